//! `sentra bench`: the replay path measured by stage on one workload file.

use std::io;
use std::path::PathBuf;

use anyhow::Result;
use sentra_pipeline::detect::{catalog, EngineConfig, Overrides};
use sentra_pipeline::normalize::{NormalizeConfig, YearPolicy};
use sentra_service::replay::{ReplayOptions, ReplaySummary, Source};

use super::detection_args::REORDER_WINDOW_SECS;
use super::files::replay_with_progress;

/// Arguments of `sentra bench`.
#[derive(clap::Args)]
pub struct Args {
    /// The workload file.
    file: PathBuf,
    /// Tenant for lines that name none (default: the host name's prefix, as in the workload).
    #[arg(long)]
    tenant: Option<String>,
    /// Year of classic syslog timestamps.
    #[arg(long, default_value_t = 2026)]
    year: i32,
}

/// Replays the workload twice (normalization alone, then the full path) and prints the figures of each.
pub fn run(args: Args) -> Result<()> {
    let Args { file, tenant, year } = args;
    let file = file.as_path();
    super::check_tenant(&tenant)?;
    let tenant_from_host = tenant.is_none();
    let opts = |detections| ReplayOptions {
        sources: vec![Source::Path(file.to_owned())],
        reorder_secs: REORDER_WINDOW_SECS,
        tenant: tenant.clone(),
        normalize: NormalizeConfig {
            year: YearPolicy::Fixed(year),
            tenant_from_host,
            ..NormalizeConfig::default()
        },
        detections,
        engine: EngineConfig::default(),
        overrides: Overrides::default(),
        data_dir: None,
    };
    // Normalization first: the peak resident set only grows, so each stage's peak reads right after it.
    let stages = [("normalize", Vec::new()), ("full path", catalog::builtin())];
    struct Figures {
        stage: &'static str,
        summary: ReplaySummary,
        wall: f64,
        cpu: f64,
        peak_rss_kib: i64,
    }
    let mut figures = Vec::new();
    for (stage, detections) in stages {
        let (cpu0, _) = cpu_and_peak_rss();
        let (summary, wall) = replay_with_progress(&opts(detections), &mut io::sink())?;
        let (cpu1, peak_rss_kib) = cpu_and_peak_rss();
        figures.push(Figures {
            stage,
            summary,
            wall,
            cpu: cpu1 - cpu0,
            peak_rss_kib,
        });
    }
    let (normalize, full) = (&figures[0], &figures[1]);
    let lines = (full.summary.counts.read + full.summary.counts.blank) as f64;
    println!("workload        {}", file.display());
    println!("lines           {lines:.0}");
    println!("events          {}", full.summary.counts.normalized);
    println!("signals         {}", full.summary.signals);
    let row = |name: &str, value: &dyn Fn(&Figures) -> String| {
        let cells: String = figures
            .iter()
            .map(|f| format!("{:>14}", value(f)))
            .collect();
        println!("{name:<16}{cells}");
    };
    row("stage", &|f| f.stage.to_owned());
    row("wall seconds", &|f| format!("{:.3}", f.wall));
    row("cpu seconds", &|f| format!("{:.3}", f.cpu));
    row("lines/s", &|f| format!("{:.0}", lines / f.wall));
    row("lines/cpu-s", &|f| format!("{:.0}", lines / f.cpu));
    row("peak rss MiB", &|f| {
        format!("{:.1}", f.peak_rss_kib as f64 / 1024.0)
    });
    // What the detections add on top of normalization, as their own rate.
    let detect_cpu = full.cpu - normalize.cpu;
    if detect_cpu > 0.0 {
        println!(
            "detection alone {:>14.0} lines/cpu-s (full path − normalize)",
            lines / detect_cpu
        );
    }
    Ok(())
}

/// CPU seconds (user + system) used by this process so far, and its peak resident set in KiB.
fn cpu_and_peak_rss() -> (f64, i64) {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime) + t(u.ru_stime), u.ru_maxrss)
}
