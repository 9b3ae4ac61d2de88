//! `sentra replay`: the whole pipeline on files, with no services. Lines are normalized into Arrow batches,
//! the detection engine runs in event time, and events, signals and quarantined input land in the
//! [`EmbeddedStore`]; signals are also streamed as JSON lines as their windows close. At end of input the
//! watermark moves past the last event, so every open window closes.
//!
//! Two threads: one reads and normalizes, the other detects and stores, joined by a small bounded channel.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use arrow::array::RecordBatch;
use sentra_schemas::{EventColumns, EventRows, QuarantineReason, Quarantined, Signal};
use sentra_sinks::embedded::EmbeddedStore;
use sentra_sinks::SinkError;
use serde::Serialize;

use crate::detect::{Detection, Engine, EngineConfig, EngineError, Overrides};
use crate::normalize::{Counts, Input, NormalizeConfig, Normalizer};

/// Events per Arrow batch.
pub const BATCH_EVENTS: usize = 65_536;

/// Where replay reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// `-` is standard input; anything else a path.
    pub fn parse(s: &str) -> Self {
        if s == "-" {
            Source::Stdin
        } else {
            Source::Path(PathBuf::from(s))
        }
    }

    /// The name used in source positions and event ids: the file's name (not its directory, so the same
    /// log replayed from another place keeps its event ids), or `stdin`.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "stdin".to_owned(),
            Source::Path(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// Everything a replay needs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Inputs, read in order (pass rotated logs oldest first).
    pub sources: Vec<Source>,
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
    /// Signals emitted.
    pub signals: u64,
    /// Signals by detection.
    pub signals_by_detection: BTreeMap<String, u64>,
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
    Store(#[from] SinkError),
    /// The signal output could not be written.
    #[error("cannot write signals: {0}")]
    Output(io::Error),
    /// The detection engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    let store = opts.data_dir.as_ref().map(EmbeddedStore::new);
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
                store.write_signals(&signals)?;
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
                    store.write_events(&chunk.events)?;
                    store.write_quarantine(&chunk.quarantined)?;
                }
                emit(outcome.signals, &mut summary, &mut *signals_out)?;
            }
            let rest = engine.finish();
            emit(rest, &mut summary, &mut *signals_out)?;
            signals_out.flush().map_err(ReplayError::Output)
        };
        let detected = detect();
        // Dropping the receiver (on error) unblocks the reader.
        let counts = reader.join().expect("reader thread does not panic")?;
        detected?;
        summary.counts = counts;
        Ok(summary)
    })
}

/// Calls `f` on every line of `reader` (without its `\n`), in order, until it returns `false`; reports
/// bytes read to `progress` as each buffer is filled, before its lines. Lines are read in place from the
/// reader's buffer; only a line cut by a refill is copied. Returns whether every line was read.
fn for_each_line(
    reader: &mut impl BufRead,
    mut f: impl FnMut(&[u8]) -> bool,
    progress: &mut dyn FnMut(u64),
) -> io::Result<bool> {
    let mut split = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            progress(0);
            return Ok(split.is_empty() || f(&split));
        }
        let n = buf.len();
        progress(n as u64);
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', buf) {
            let line = if split.is_empty() {
                &buf[from..end]
            } else {
                split.extend_from_slice(&buf[from..end]);
                &split[..]
            };
            if !f(line) {
                return Ok(false);
            }
            split.clear();
            from = end + 1;
        }
        split.extend_from_slice(&buf[from..]);
        reader.consume(n);
    }
}

/// Reads and normalizes every source, sending full batches to `tx`.
fn read_all(
    opts: &ReplayOptions,
    tx: mpsc::SyncSender<Chunk>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Counts, ReplayError> {
    let mut counts = Counts::default();
    let mut columns = EventColumns::with_capacity(BATCH_EVENTS);
    let mut quarantined = Vec::new();
    // When the buffer being split was read: the reference for year inference and for the `future` bound.
    // Taken at each fill, so a stream piped in for hours is not judged by the clock at its start.
    let read_us = std::cell::Cell::new(sentra_schemas::time::now_us());
    let mut progress = |n: u64| {
        read_us.set(sentra_schemas::time::now_us());
        progress(n)
    };
    let send = |columns: &mut EventColumns, quarantined: &mut Vec<Quarantined>| {
        let chunk = Chunk {
            events: columns.finish(),
            quarantined: std::mem::take(quarantined),
        };
        // A closed channel means the detector stopped with an error, which it reports.
        tx.send(chunk).is_ok()
    };
    for source in &opts.sources {
        let name = source.name();
        let input_err = |e| ReplayError::Input {
            path: name.clone(),
            source: e,
        };
        let reader: Box<dyn Read> = match source {
            Source::Stdin => Box::new(io::stdin().lock()),
            Source::Path(p) => Box::new(File::open(p).map_err(input_err)?),
        };
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut normalizer = Normalizer::new(opts.normalize.clone());
        // `NAME:` stays; only the line number after it is rewritten for each line.
        let mut position = format!("{name}:");
        let prefix = position.len();
        let mut line_no = 0u64;
        let normalize_line = |line: &[u8]| {
            line_no += 1;
            let bytes = line.strip_suffix(b"\r").unwrap_or(line);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                counts.blank += 1;
                return true;
            }
            position.truncate(prefix);
            position.push_str(itoa::Buffer::new().format(line_no));
            let input = Input {
                bytes,
                source: &position,
                header_tenant: None,
                fallback_tenant: opts.tenant.as_deref(),
                reference_us: read_us.get(),
                reference_is_event_time: false,
                read_us: Some(read_us.get()),
            };
            let result = normalizer.normalize_into(&input, &mut columns);
            counts.count(&result, |unknown| *unknown);
            if let Err(q) = result {
                quarantined.push(*q);
            }
            columns.len() < BATCH_EVENTS || send(&mut columns, &mut quarantined)
        };
        let go_on = for_each_line(&mut reader, normalize_line, &mut progress).map_err(input_err)?;
        counts.lossy_utf8 += normalizer.lossy_utf8();
        if !go_on {
            return Ok(counts);
        }
    }
    if !columns.is_empty() || !quarantined.is_empty() {
        send(&mut columns, &mut quarantined);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_whole_and_in_order_whatever_the_buffer_cuts() {
        let text =
            "first\n\nsecond line\r\na much longer line than the buffer holds\nx\nlast, unended";
        let expected: Vec<&str> = text.split('\n').collect();
        for capacity in [1, 2, 3, 7, 16, 64, 1024] {
            let mut reader = BufReader::with_capacity(capacity, text.as_bytes());
            let mut lines = Vec::new();
            let mut read = 0;
            let finished = for_each_line(
                &mut reader,
                |l| {
                    lines.push(String::from_utf8(l.to_vec()).unwrap());
                    true
                },
                &mut |n| read += n,
            )
            .unwrap();
            assert!(finished);
            assert_eq!(lines, expected, "buffer of {capacity}");
            assert_eq!(read, text.len() as u64);
        }
        // A file ending in a newline has no empty last line; a stop is reported.
        let mut seen = 0;
        let mut reader = BufReader::with_capacity(4, &b"a\nbb\nccc\n"[..]);
        assert!(for_each_line(
            &mut reader,
            |_| {
                seen += 1;
                true
            },
            &mut |_| {}
        )
        .unwrap());
        assert_eq!(seen, 3);
        let mut reader = BufReader::with_capacity(4, &b"a\nbb\nccc\n"[..]);
        assert!(!for_each_line(&mut reader, |l| l != b"bb", &mut |_| {}).unwrap());
    }
}
