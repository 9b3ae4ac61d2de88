//! Reading log files for the commands that replay them: checking the inputs, a progress bar on a terminal,
//! and the summary printed at the end.

use std::io::{self, IsTerminal, Write};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sentra_service::replay::{self, ReplayOptions, ReplaySummary, Source};

/// Checks the inputs exist and turns them into sources.
pub fn sources(files: &[String]) -> Result<Vec<Source>> {
    files
        .iter()
        .map(|f| {
            let s = Source::parse(f);
            if let Source::Path(p) = &s {
                if !p.is_file() {
                    bail!("{} is not a readable file", p.display());
                }
            }
            Ok(s)
        })
        .collect()
}

/// Runs a replay with a progress bar on a terminal; returns the summary and the wall time.
pub fn replay_with_progress(
    opts: &ReplayOptions,
    out: &mut (dyn Write + Send),
) -> Result<(ReplaySummary, f64)> {
    let total: u64 = opts
        .sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Stdin => 0,
        })
        .sum();
    let bar = progress_bar(total);
    let started = std::time::Instant::now();
    let summary = replay::replay(opts, out, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok((summary, started.elapsed().as_secs_f64()))
}

/// Prints what a replay did, with its hints, to standard error.
pub fn print_summary(summary: &ReplaySummary, secs: f64) {
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
    if c.lossy_utf8 > 0 {
        eprintln!("  not valid UTF-8, read lossily: {}", c.lossy_utf8);
    }
    for (reason, n) in &summary.quarantined_by_reason {
        eprintln!("  quarantined {reason}: {n}");
    }
    if summary.out_of_order > 0 {
        eprintln!(
            "  out of order beyond the reorder window: {}",
            summary.out_of_order
        );
    }
    for (tenant, detections) in &summary.state_shed {
        for (detection, n) in detections {
            eprintln!("  state shed by {detection} for {tenant}: {n}");
        }
    }
    for (detection, n) in &summary.signals_by_detection {
        eprintln!("  signals {detection}: {n}");
    }
    for hint in &summary.hints {
        eprintln!("hint: {hint}");
    }
}

/// A progress bar over `total` bytes on a terminal (a spinner when the total is unknown); hidden otherwise.
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
