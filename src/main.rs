//! `sentra`: one binary, one subcommand per job. Thin by design: it parses arguments, sets up logging and
//! progress, and calls the pipeline crate.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sentra_pipeline::config::Config;
use sentra_pipeline::detect::BruteForceConfig;
use sentra_pipeline::normalize::{Counts, Input, NormalizeConfig, Normalizer, YearPolicy};
use sentra_pipeline::replay::{self, ReplayOptions, Source};

/// Sentra turns floods of tenant-tagged Linux security events into a handful of calm, explainable signals.
#[derive(Parser)]
#[command(name = "sentra", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on log files with no services: signals to stdout, everything kept under --data-dir.
    Replay {
        /// Syslog text or JSON-lines files, read in order (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that do not name one.
        #[arg(long)]
        tenant: Option<String>,
        /// Take the tenant from the host name's first dash-separated token when a line names none.
        #[arg(long)]
        tenant_from_host: bool,
        /// Year of classic syslog timestamps (which carry none); default: inferred from the clock.
        #[arg(long)]
        year: Option<i32>,
        /// Embedded store directory.
        #[arg(long, default_value = "./sentra-data")]
        data_dir: PathBuf,
        /// Keep nothing on disk (only print signals).
        #[arg(long, conflicts_with = "data_dir")]
        no_store: bool,
        /// Write signals here instead of standard output.
        #[arg(long)]
        signals_out: Option<PathBuf>,
        /// Failed logins from one source in one window that make an SSH brute-force signal.
        #[arg(long, default_value_t = BruteForceConfig::default().threshold)]
        brute_force_threshold: u64,
        /// SSH brute-force window, seconds.
        #[arg(long, default_value_t = BruteForceConfig::default().window_secs)]
        brute_force_window: u64,
    },
    /// Print normalized ECS events as JSON lines (quarantined lines go to stderr with their reason).
    Normalize {
        /// Files to read (`-` for standard input).
        #[arg(required = true)]
        files: Vec<String>,
        /// Tenant for lines that do not name one.
        #[arg(long)]
        tenant: Option<String>,
        /// Year of classic syslog timestamps; default: inferred from the clock.
        #[arg(long)]
        year: Option<i32>,
    },
    /// Consume Kafka, normalize, detect, and store in ClickHouse, committing offsets only after storage.
    Run {
        /// Configuration file (TOML); SENTRA_<SECTION>_<KEY> environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and explain every problem, without connecting to anything.
    Validate {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SENTRA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(io::stderr)
        .init();
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`sentra normalize … | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn year_policy(year: Option<i32>) -> YearPolicy {
    year.map_or(YearPolicy::Infer, YearPolicy::Fixed)
}

fn check_tenant(tenant: &Option<String>) -> Result<()> {
    if let Some(t) = tenant {
        sentra_schemas::TenantId::new(t)
            .with_context(|| format!("--tenant {t:?} is not a valid tenant"))?;
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay {
            files,
            tenant,
            tenant_from_host,
            year,
            data_dir,
            no_store,
            signals_out,
            brute_force_threshold,
            brute_force_window,
        } => {
            check_tenant(&tenant)?;
            let brute_force = BruteForceConfig {
                threshold: brute_force_threshold,
                window_secs: brute_force_window,
                ..BruteForceConfig::default()
            };
            let problems = brute_force.problems();
            if !problems.is_empty() {
                bail!("{}", problems.join("; "));
            }
            let sources: Vec<Source> = files.iter().map(|f| Source::parse(f)).collect();
            let total: u64 = sources
                .iter()
                .map(|s| match s {
                    Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                    Source::Stdin => 0,
                })
                .sum();
            for s in &sources {
                if let Source::Path(p) = s {
                    if !p.is_file() {
                        bail!("{} is not a readable file", p.display());
                    }
                }
            }
            let opts = ReplayOptions {
                sources,
                tenant,
                normalize: NormalizeConfig {
                    year: year_policy(year),
                    tenant_from_host,
                    ..NormalizeConfig::default()
                },
                brute_force,
                data_dir: (!no_store).then_some(data_dir.clone()),
            };
            let bar = progress_bar(total);
            let mut out: Box<dyn Write> = match &signals_out {
                Some(p) => Box::new(io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(io::BufWriter::new(io::stdout().lock())),
            };
            let started = std::time::Instant::now();
            let summary = replay::replay(&opts, &mut out, &mut |n| bar.inc(n))?;
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            let c = &summary.counts;
            eprintln!(
                "read {} lines in {secs:.2}s: {} events ({} unknown kind), {} quarantined, {} blank, {} late; {} signals",
                c.read + c.blank,
                c.normalized,
                c.unknown,
                c.quarantined,
                c.blank,
                summary.late,
                summary.signals
            );
            for (reason, n) in &summary.quarantined_by_reason {
                eprintln!("  quarantined {reason}: {n}");
            }
            if !no_store {
                eprintln!("stored under {}", data_dir.display());
            }
            Ok(())
        }
        Command::Normalize {
            files,
            tenant,
            year,
        } => {
            check_tenant(&tenant)?;
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            let mut counts = Counts::default();
            for f in &files {
                let source = Source::parse(f);
                let text: Vec<u8> = match &source {
                    Source::Stdin => {
                        let mut v = Vec::new();
                        io::Read::read_to_end(&mut io::stdin(), &mut v)?;
                        v
                    }
                    Source::Path(p) => {
                        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
                    }
                };
                let name = match &source {
                    Source::Stdin => "stdin".to_owned(),
                    Source::Path(p) => p
                        .file_name()
                        .map_or(f.clone(), |n| n.to_string_lossy().into_owned()),
                };
                let mut n = Normalizer::new(NormalizeConfig {
                    year: year_policy(year),
                    ..NormalizeConfig::default()
                });
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_micros() as i64;
                for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let position = format!("{name}:{}", i + 1);
                    let input = Input {
                        bytes: line.strip_suffix(b"\r").unwrap_or(line),
                        source: &position,
                        header_tenant: None,
                        fallback_tenant: tenant.as_deref(),
                        reference_us: now,
                        reference_is_event_time: false,
                    };
                    let r = n.normalize(&input);
                    counts.count(&r);
                    match r {
                        Ok(e) => {
                            serde_json::to_writer(&mut out, &e.to_ecs_json())?;
                            out.write_all(b"\n")?;
                        }
                        Err(q) => eprintln!("{}", serde_json::to_string(&q)?),
                    }
                }
            }
            out.flush()?;
            Ok(())
        }
        Command::Validate { config } => {
            let c = Config::load(Some(&config), std::env::vars()).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not usable:\n  - {}",
                    config.display(),
                    e.problems.join("\n  - ")
                )
            })?;
            println!(
                "{} is valid: Kafka {} (group {}, topics {}), ClickHouse {} database {}",
                config.display(),
                c.kafka.brokers,
                c.kafka.group_id,
                c.kafka.topics.join(","),
                c.clickhouse.url,
                c.clickhouse.database
            );
            Ok(())
        }
        Command::Run { config } => {
            let c = Config::load(config.as_deref(), std::env::vars()).map_err(|e| {
                anyhow::anyhow!(
                    "configuration is not usable:\n  - {}",
                    e.problems.join("\n  - ")
                )
            })?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    shutdown_signal().await;
                    let _ = tx.send(true);
                });
                let stats = sentra_pipeline::run::run(&c, rx).await?;
                eprintln!("{}", serde_json::to_string(&stats)?);
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn progress_bar(total: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
