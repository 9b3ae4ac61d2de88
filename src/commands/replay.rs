//! `sentra replay`: the whole pipeline on log files with no services.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use sentra_service::replay::ReplayOptions;

use super::detection_args::DetectionArgs;
use super::files::{print_summary, replay_with_progress, sources};

/// Arguments of `sentra replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Syslog text, JSON-lines or journald JSON files, plain or gzip-compressed, merged by event time
    /// (`-` for standard input).
    #[arg(required = true)]
    files: Vec<String>,
    /// Tenant for lines that do not name one.
    #[arg(long)]
    tenant: Option<String>,
    /// Take the tenant from the host name's first dash-separated token when a line names none.
    #[arg(long)]
    tenant_from_host: bool,
    /// Year of the first classic syslog timestamp (which carry none); default: the year that keeps each
    /// file in the past, its last line no later than now.
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
    #[command(flatten)]
    detection: DetectionArgs,
}

/// Replays the files: signals to standard output (or `--signals-out`), everything under `--data-dir`.
pub fn run(args: Args) -> Result<()> {
    super::check_tenant(&args.tenant)?;
    let normalize = args.detection.normalize(args.year, args.tenant_from_host)?;
    let (detections, engine, overrides) = args.detection.load()?;
    let opts = ReplayOptions {
        sources: sources(&args.files)?,
        reorder_secs: args.detection.reorder_window,
        tenant: args.tenant,
        normalize,
        detections,
        engine,
        overrides,
        data_dir: (!args.no_store).then(|| args.data_dir.clone()),
    };
    let mut out: Box<dyn Write + Send> = match &args.signals_out {
        Some(p) => Box::new(io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout())),
    };
    let (summary, secs) = replay_with_progress(&opts, &mut out)?;
    print_summary(&summary, secs);
    if !args.no_store {
        eprintln!("stored under {}", args.data_dir.display());
    }
    Ok(())
}
