//! `sentra detections list|test`: what the detections are, and what they find in given log files.

use anyhow::Result;
use sentra_pipeline::detect::definition::WindowSpec;
use sentra_schemas::text::printable;
use sentra_schemas::Signal;
use sentra_service::replay::ReplayOptions;

use super::detection_args::DetectionArgs;
use super::files::{print_summary, replay_with_progress, sources};

/// `sentra detections …`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Show every detection: name, window, keys, MITRE techniques, intent.
    List {
        #[command(flatten)]
        detection: DetectionArgs,
    },
    /// Run the detections on log files and report what fired, per detection.
    Test {
        /// Log files (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that name none.
        #[arg(long, default_value = "test")]
        tenant: String,
        /// Year of classic syslog timestamps; default: inferred from the clock.
        #[arg(long)]
        year: Option<i32>,
        #[command(flatten)]
        detection: DetectionArgs,
    },
}

/// Lists the detections, or tries them on files.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::List { detection } => list(&detection),
        Command::Test {
            files,
            tenant,
            year,
            detection,
        } => test(&files, tenant, year, &detection),
    }
}

/// Prints one line per detection.
fn list(detection: &DetectionArgs) -> Result<()> {
    let (detections, _, _) = detection.load()?;
    println!(
        "{:<34} {:<22} {:<22} {:<22} INTENT",
        "NAME", "WINDOW", "PER", "MITRE"
    );
    for d in &detections {
        let window = match d.window {
            WindowSpec::Tumbling { size_secs } => format!("tumbling {size_secs}s"),
            WindowSpec::Sliding {
                size_secs,
                slide_secs,
            } => format!("sliding {size_secs}s/{slide_secs}s"),
        };
        let mitre: Vec<&str> = d.mitre.iter().map(|m| m.technique.as_str()).collect();
        println!(
            "{:<34} {:<22} {:<22} {:<22} {}",
            d.name,
            window,
            d.group_by.join("+"),
            mitre.join(","),
            d.intent
        );
    }
    Ok(())
}

/// Replays `files` without a store and reports, per detection, how many signals fired and the first few.
fn test(
    files: &[String],
    tenant: String,
    year: Option<i32>,
    detection: &DetectionArgs,
) -> Result<()> {
    super::check_tenant(&Some(tenant.clone()))?;
    let normalize = detection.normalize(year, false)?;
    let (detections, engine, overrides) = detection.load()?;
    let names: Vec<String> = detections.iter().map(|d| d.name.clone()).collect();
    let opts = ReplayOptions {
        sources: sources(files)?,
        reorder_secs: detection.reorder_window,
        tenant: Some(tenant),
        normalize,
        detections,
        engine,
        overrides,
        data_dir: None,
    };
    let mut signals = Vec::new();
    let (summary, secs) = replay_with_progress(&opts, &mut signals)?;
    let signals: Vec<Signal> = signals
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<_, _>>()?;
    for name in &names {
        let fired: Vec<&Signal> = signals.iter().filter(|s| &s.signal == name).collect();
        println!("{name}: {} signal(s)", fired.len());
        for s in fired.iter().take(3) {
            println!(
                "  {} {} risk {:.3} — {}",
                printable(&s.id),
                s.severity.as_str(),
                s.risk_score,
                printable(&s.narrative)
            );
        }
    }
    print_summary(&summary, secs);
    Ok(())
}
