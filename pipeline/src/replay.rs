//! `sentra replay`: the whole pipeline on files, with no services. Lines are normalized, detections run in
//! event time, and events, signals and quarantined input land in the [`EmbeddedStore`]; signals are also
//! streamed as JSON lines to a writer as their windows close.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use sentra_schemas::{Event, Quarantined, Signal};
use sentra_sinks::embedded::EmbeddedStore;
use sentra_sinks::SinkError;
use serde::Serialize;

use crate::detect::{BruteForceConfig, Observed, SshBruteForce};
use crate::normalize::{Counts, Input, NormalizeConfig, Normalizer};

/// Events buffered before a Parquet part is written.
const BATCH_EVENTS: usize = 65_536;

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
    fn name(&self) -> String {
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
    /// Brute-force detection settings.
    pub brute_force: BruteForceConfig,
    /// Embedded store location; `None` keeps nothing (benchmarks, dry runs).
    pub data_dir: Option<PathBuf>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    /// Records read, normalized, quarantined.
    #[serde(flatten)]
    pub counts: Counts,
    /// Quarantined records by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Relevant events that arrived after their window closed (stored, not counted by detections).
    pub late: u64,
    /// Signals emitted.
    pub signals: u64,
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
}

struct Replay<'a> {
    store: Option<EmbeddedStore>,
    detector: SshBruteForce,
    events: Vec<Event>,
    quarantine: Vec<Quarantined>,
    summary: ReplaySummary,
    signals_out: &'a mut dyn Write,
}

impl Replay<'_> {
    fn emit(&mut self, signals: Vec<Signal>) -> Result<(), ReplayError> {
        for s in &signals {
            serde_json::to_writer(&mut *self.signals_out, s)
                .map_err(|e| ReplayError::Output(e.into()))?;
            self.signals_out
                .write_all(b"\n")
                .map_err(ReplayError::Output)?;
        }
        self.summary.signals += signals.len() as u64;
        if let Some(store) = &self.store {
            store.write_signals(&signals)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ReplayError> {
        if let Some(store) = &self.store {
            store.write_events(&self.events)?;
            store.write_quarantine(&self.quarantine)?;
        }
        self.events.clear();
        self.quarantine.clear();
        Ok(())
    }
}

/// Replays `opts.sources`, streaming signals to `signals_out` and reporting bytes read to `progress`.
pub fn replay(
    opts: &ReplayOptions,
    signals_out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ReplaySummary, ReplayError> {
    let mut r = Replay {
        store: opts.data_dir.as_ref().map(EmbeddedStore::new),
        detector: SshBruteForce::new(opts.brute_force.clone()),
        events: Vec::with_capacity(BATCH_EVENTS),
        quarantine: Vec::new(),
        summary: ReplaySummary::default(),
        signals_out,
    };
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
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
        let mut line = Vec::with_capacity(512);
        let mut position = String::new();
        for line_no in 1u64.. {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(input_err)?;
            if n == 0 {
                break;
            }
            progress(n as u64);
            if line.iter().all(u8::is_ascii_whitespace) {
                r.summary.counts.blank += 1;
                continue;
            }
            let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            position.clear();
            position.push_str(&name);
            position.push(':');
            position.push_str(itoa(line_no).as_str());
            let input = Input {
                bytes,
                source: &position,
                header_tenant: None,
                fallback_tenant: opts.tenant.as_deref(),
                reference_us: now_us,
                reference_is_event_time: false,
            };
            let result = normalizer.normalize(&input);
            r.summary.counts.count(&result);
            match result {
                Ok(event) => {
                    match r.detector.observe(&event) {
                        Observed::Late => r.summary.late += 1,
                        Observed::Counted => {
                            let ready = r.detector.close_ready();
                            if !ready.is_empty() {
                                r.emit(ready)?;
                            }
                        }
                        Observed::Ignored => {}
                    }
                    r.events.push(event);
                    if r.events.len() >= BATCH_EVENTS {
                        r.flush()?;
                    }
                }
                Err(q) => {
                    *r.summary
                        .quarantined_by_reason
                        .entry(q.reason.as_str().to_owned())
                        .or_default() += 1;
                    r.quarantine.push(*q);
                }
            }
        }
    }
    let rest = r.detector.close_all();
    r.emit(rest)?;
    r.flush()?;
    r.signals_out.flush().map_err(ReplayError::Output)?;
    Ok(r.summary)
}

fn itoa(n: u64) -> String {
    n.to_string()
}
