//! `sentra replay`: the whole pipeline on files, with no services. Lines are normalized into Arrow batches,
//! the detection engine runs in event time, and events, signals and quarantined input land in the
//! [`EmbeddedStore`]; signals are also streamed as JSON lines as their windows close. At end of input the
//! watermark moves past the last event, so every open window closes.
//!
//! Inputs are read side by side and merged into one time order ([`merge`]), so several files covering the
//! same hosts and hours replay as if every event had arrived when it happened. Classic syslog lines of a
//! file get the year that keeps the file in the past ([`Source::archive_year`]), so the `future` rule only
//! catches a clock or a zone that really runs ahead.
//!
//! Two threads: one reads, normalizes and merges, the other detects and stores, joined by a small bounded
//! channel.

mod input;
mod merge;

pub use input::Source;

use input::Lines;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;

use arrow::array::RecordBatch;
use sentra_schemas::{EventColumns, EventRows, QuarantineReason, Quarantined, Signal};
use sentra_sinks::embedded::EmbeddedStore;
use serde::Serialize;

use sentra_pipeline::detect::{
    Detection, Engine, EngineConfig, EngineError, Overrides, ShedTotals,
};
use sentra_pipeline::normalize::{Counts, Input, NormalizeConfig, Normalizer, YearPolicy};

use crate::outputs::embedded::Embedded;
use crate::outputs::{Batch, Output, OutputError};
use merge::Merge;

/// Events per Arrow batch.
pub const BATCH_EVENTS: usize = 65_536;

/// Everything a replay needs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Inputs, merged by event time.
    pub sources: Vec<Source>,
    /// How far out of order (seconds) an input's events may be and still be put in order.
    pub reorder_secs: u64,
    /// Tenant for records that do not name one.
    pub tenant: Option<String>,
    /// Normalization settings.
    pub normalize: NormalizeConfig,
    /// The detections to run.
    pub detections: Vec<Detection>,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Analyst overrides applied to every signal.
    pub overrides: Overrides,
    /// Embedded store location; `None` keeps nothing (benchmarks, dry runs).
    pub data_dir: Option<PathBuf>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    /// Records read, normalized, quarantined at normalization.
    #[serde(flatten)]
    pub counts: Counts,
    /// Quarantined records by reason (normalization and lateness).
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Events older than their tenant's watermark: stored, quarantined as `late`, not counted by detections.
    pub late: u64,
    /// Events that arrived further out of order than the reorder bound (see [`merge`]).
    pub out_of_order: u64,
    /// Entities dropped per tenant and detection because the detection held
    /// `detection.max_entities_per_detection` of them (each reported by a `detection_degraded` signal).
    pub state_shed: ShedTotals,
    /// Signals emitted.
    pub signals: u64,
    /// Signals by detection.
    pub signals_by_detection: BTreeMap<String, u64>,
    /// What to do about a large share of quarantined, late or disordered input.
    pub hints: Vec<String>,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Input {
        /// The input.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The embedded store could not be written.
    #[error("cannot write the embedded store: {0}")]
    Store(#[from] OutputError),
    /// The signal output could not be written.
    #[error("cannot write signals: {0}")]
    Output(io::Error),
    /// The detection engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Events could not be put in time order.
    #[error("cannot order events: {0}")]
    Order(#[from] arrow::error::ArrowError),
}

/// A finished batch on its way from the reader to the detector.
struct Chunk {
    events: RecordBatch,
    quarantined: Vec<Quarantined>,
}

/// The quarantine record of an event the engine found late.
pub fn late_record(batch: &RecordBatch, row: usize, lateness_secs: u64) -> Quarantined {
    let e = EventRows::new(batch).get(row);
    Quarantined {
        reason: QuarantineReason::Late,
        detail: format!(
            "event time {} is behind the watermark of tenant {} (its slowest host in step, less {lateness_secs}s \
             of allowed lateness); the event is stored but not counted by detections",
            sentra_schemas::time::format_rfc3339_us(e.timestamp_us),
            e.tenant
        ),
        tenant: Some(e.tenant.to_owned()),
        source: e.source.to_owned(),
        original: e.original.as_bytes().to_vec(),
    }
}

/// Replays `opts.sources`, streaming signals to `signals_out` and reporting bytes read to `progress`.
pub fn replay(
    opts: &ReplayOptions,
    signals_out: &mut (dyn Write + Send),
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ReplaySummary, ReplayError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(ReplayError::Output)?;
    let mut engine = rt.block_on(Engine::new(opts.detections.clone(), opts.engine.clone()))?;
    let store = opts
        .data_dir
        .as_ref()
        .map(|d| Embedded(EmbeddedStore::new(d)));
    let (tx, rx) = mpsc::sync_channel::<Chunk>(2);

    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_all(opts, tx, progress));
        let mut summary = ReplaySummary::default();
        let emit = |mut signals: Vec<Signal>,
                    summary: &mut ReplaySummary,
                    out: &mut (dyn Write + Send)|
         -> Result<(), ReplayError> {
            signals.iter_mut().for_each(|s| opts.overrides.apply(s));
            // Each signal is serialized into a buffer and written at once: serde_json writes every token
            // apart, and through `dyn Write` each of those was a call.
            let mut text = Vec::with_capacity(4096);
            for s in &signals {
                text.clear();
                serde_json::to_writer(&mut text, s).map_err(|e| ReplayError::Output(e.into()))?;
                text.push(b'\n');
                out.write_all(&text).map_err(ReplayError::Output)?;
                *summary
                    .signals_by_detection
                    .entry(s.signal.clone())
                    .or_default() += 1;
            }
            summary.signals += signals.len() as u64;
            if let Some(store) = &store {
                rt.block_on(store.write_signals(&signals))?;
            }
            Ok(())
        };
        let mut detect = || -> Result<(), ReplayError> {
            for mut chunk in rx.iter() {
                let outcome = rt.block_on(engine.process(&chunk.events))?;
                summary.late += outcome.late_rows.len() as u64;
                for &row in &outcome.late_rows {
                    chunk.quarantined.push(late_record(
                        &chunk.events,
                        row,
                        opts.engine.allowed_lateness_secs,
                    ));
                }
                for q in &chunk.quarantined {
                    *summary
                        .quarantined_by_reason
                        .entry(q.reason.as_str().to_owned())
                        .or_default() += 1;
                }
                if let Some(store) = &store {
                    let batch = Batch {
                        events: &chunk.events,
                        signals: &[],
                    };
                    rt.block_on(store.write_events(&batch))?;
                    rt.block_on(store.write_quarantine(&chunk.quarantined))?;
                }
                emit(outcome.signals, &mut summary, &mut *signals_out)?;
            }
            let rest = engine.finish();
            emit(rest, &mut summary, &mut *signals_out)?;
            signals_out.flush().map_err(ReplayError::Output)
        };
        let detected = detect();
        summary.state_shed = engine.shed().clone();
        // Dropping the receiver (on error) unblocks the reader.
        let (counts, out_of_order) = reader.join().expect("reader thread does not panic")?;
        detected?;
        summary.counts = counts;
        summary.out_of_order = out_of_order;
        summary.hints = hints(&summary, opts.reorder_secs);
        Ok(summary)
    })
}

/// At most this many held events of an input are copied into its next batch (see [`read_all`]).
const CARRY_ROWS: usize = BATCH_EVENTS / 4;

/// Read buffers of all inputs together stay near this many bytes (each between 64 KiB and 1 MiB).
const READ_BUFFERS_BYTES: usize = 64 << 20;

/// One input being read: its lines, its normalizer (which tracks the year of classic lines) and its position.
struct Reader {
    lines: Lines<Box<dyn Read>>,
    normalizer: Normalizer,
    /// Bytes taken from the file or stream so far, and how many of them were reported as progress.
    read: Rc<Cell<u64>>,
    reported: u64,
    /// `NAME:` stays; only the line number after it is rewritten for each line.
    position: String,
    prefix: usize,
    line_no: u64,
}

impl Reader {
    fn open(
        source: &Source,
        config: &NormalizeConfig,
        now_us: i64,
        buffer: usize,
    ) -> Result<Self, ReplayError> {
        let input_err = |e| ReplayError::Input {
            path: source.name(),
            source: e,
        };
        let mut config = config.clone();
        if config.year == YearPolicy::Infer {
            config.year = source.archive_year(now_us).map_err(input_err)?;
        }
        let read = Rc::new(Cell::new(0));
        let reader = source.open(read.clone()).map_err(input_err)?;
        let position = format!("{}:", source.name());
        Ok(Self {
            lines: Lines::new(reader, buffer),
            normalizer: Normalizer::new(config),
            read,
            reported: 0,
            prefix: position.len(),
            position,
            line_no: 0,
        })
    }

    /// Normalizes up to `lines` lines into `columns`; returns whether the input ended.
    fn read_batch(
        &mut self,
        lines: usize,
        tenant: Option<&str>,
        columns: &mut EventColumns,
        quarantined: &mut Vec<Quarantined>,
        counts: &mut Counts,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> io::Result<bool> {
        // When the buffer being split was read: the reference for the year of standard input's first classic
        // line and for the `future` bound. Taken at each fill, so a stream piped in for hours is not judged by
        // the clock at its start.
        let read_us = Cell::new(sentra_schemas::time::now_us());
        let mut refilled = || {
            read_us.set(sentra_schemas::time::now_us());
            let read = self.read.get();
            progress(read - self.reported);
            self.reported = read;
        };
        let (normalizer, position, prefix, line_no) = (
            &mut self.normalizer,
            &mut self.position,
            self.prefix,
            &mut self.line_no,
        );
        let mut lines_left = lines;
        let normalize_line = |line: &[u8]| {
            *line_no += 1;
            lines_left -= 1;
            let bytes = line.strip_suffix(b"\r").unwrap_or(line);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                counts.blank += 1;
                return lines_left > 0;
            }
            position.truncate(prefix);
            position.push_str(itoa::Buffer::new().format(*line_no));
            let input = Input::line(bytes, position, tenant, Some(read_us.get()));
            let result = normalizer.normalize_into(&input, columns);
            counts.count(&result, |unknown| *unknown);
            if let Err(q) = result {
                quarantined.push(*q);
            }
            lines_left > 0
        };
        self.lines.read(normalize_line, &mut refilled)
    }
}

/// Reads, normalizes and merges every source, sending batches in time order to `tx`. Returns the counts
/// and how many events arrived out of order beyond the bound.
fn read_all(
    opts: &ReplayOptions,
    tx: mpsc::SyncSender<Chunk>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(Counts, u64), ReplayError> {
    let now_us = sentra_schemas::time::now_us();
    let buffer = (READ_BUFFERS_BYTES / opts.sources.len().max(1)).clamp(64 << 10, 1 << 20);
    let mut readers = opts
        .sources
        .iter()
        .map(|s| Reader::open(s, &opts.normalize, now_us, buffer))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merge = Merge::new(readers.len(), opts.reorder_secs);
    let mut counts = Counts::default();
    let mut columns = EventColumns::with_capacity(BATCH_EVENTS);
    let mut quarantined = Vec::new();
    while let Some(i) = merge.next_input() {
        // A little held back of this input (a sorted input's last moments) continues in the batch read
        // now, so that batch is handed on as it is; more stays in the merge, where it is not copied again.
        if merge.held_rows(i) <= CARRY_ROWS {
            for held in merge.take_held(i) {
                let rows = EventRows::new(&held);
                for row in 0..held.num_rows() {
                    columns.append(&rows.get(row));
                }
            }
        }
        // The batch stays within the builders' capacity: growing them would copy every column.
        let lines = BATCH_EVENTS - columns.len();
        let name = || opts.sources[i].name();
        let ended = readers[i]
            .read_batch(
                lines,
                opts.tenant.as_deref(),
                &mut columns,
                &mut quarantined,
                &mut counts,
                progress,
            )
            .map_err(|source| ReplayError::Input {
                path: name(),
                source,
            })?;
        merge.push(i, columns.finish(), ended);
        while let Some(events) = merge.ready()? {
            let chunk = Chunk {
                events,
                quarantined: std::mem::take(&mut quarantined),
            };
            // A closed channel means the detector stopped with an error, which it reports.
            if tx.send(chunk).is_err() {
                return Ok(finish(counts, &readers, &merge));
            }
        }
    }
    if !quarantined.is_empty() {
        let chunk = Chunk {
            events: columns.finish(),
            quarantined,
        };
        let _ = tx.send(chunk);
    }
    Ok(finish(counts, &readers, &merge))
}

/// The reader's counts with the normalizers' own, and the merge's count of disorder.
fn finish(mut counts: Counts, readers: &[Reader], merge: &Merge) -> (Counts, u64) {
    counts.lossy_utf8 = readers.iter().map(|r| r.normalizer.lossy_utf8()).sum();
    (counts, merge.out_of_order())
}

/// What to do about the problems a replay ran into, with the option that addresses each: any event lost to
/// disorder or lateness (detections did not see it), and each reason that quarantined at least 1 % of the
/// records read.
pub fn hints(summary: &ReplaySummary, reorder_secs: u64) -> Vec<String> {
    let read = summary.counts.read;
    let large = |n: u64| n > 0 && n.saturating_mul(100) >= read;
    let reason = |r: QuarantineReason| {
        summary
            .quarantined_by_reason
            .get(r.as_str())
            .copied()
            .unwrap_or(0)
    };
    let mut hints = Vec::new();
    let mut add = |n: u64, text: String| {
        if n > 0 {
            hints.push(format!("{} {text}", thousands(n)));
        }
    };
    let share = |n: u64| if large(n) { n } else { 0 };
    add(
        share(reason(QuarantineReason::Future)),
        "lines dated after the moment they were read — pass --year Y for classic syslog from an earlier \
         year, or --timezone Z if the host logs local time"
            .to_owned(),
    );
    add(
        summary.out_of_order,
        format!(
            "events arrived more than {reorder_secs} s behind events already processed — raise \
             --reorder-window"
        ),
    );
    add(
        summary.late,
        "events were late for their tenant's watermark and not counted by detections — raise \
         --reorder-window, or detection.allowed_lateness_secs"
            .to_owned(),
    );
    add(
        (summary.state_shed.values()).flat_map(|d| d.values()).sum(),
        "entities were dropped by detections holding as many as they may for a tenant (see the \
         detection_degraded signals) — raise --max-entities-per-detection if the volume is legitimate"
            .to_owned(),
    );
    add(
        share(reason(QuarantineReason::NoTimestamp)),
        "lines carry no timestamp Sentra reads (classic syslog, RFC 5424, ISO-8601, JSON with a time field) \
         — check the input's format"
            .to_owned(),
    );
    add(
        share(reason(QuarantineReason::NoTenant)),
        "lines name no tenant — pass --tenant T, or --tenant-from-host".to_owned(),
    );
    add(
        share(reason(QuarantineReason::InvalidJson)),
        "lines start with `{` but are not a JSON object Sentra reads (a `message` and a time field) — \
         check the shipper's output"
            .to_owned(),
    );
    hints
}

/// `n` with a comma between each group of three digits (`2,000`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_option_for_a_large_share() {
        let mut summary = ReplaySummary::default();
        summary.counts.read = 10_000;
        summary.quarantined_by_reason.insert("future".into(), 2_000);
        summary.quarantined_by_reason.insert("no_tenant".into(), 99);
        summary.out_of_order = 15;
        let hints = hints(&summary, 300);
        assert_eq!(hints.len(), 2, "{hints:?}");
        assert!(hints[0].starts_with("2,000 lines dated after") && hints[0].contains("--year"));
        assert!(hints[1].starts_with("15 events arrived more than 300 s"));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
