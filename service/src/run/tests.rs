//! The run loop against a source and outputs that record what they are asked: the order of the steps, what
//! is acknowledged and committed, refused rows, retries and failures.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use sentra_pipeline::detect::{catalog, Engine, EngineConfig, Overrides};
use sentra_pipeline::normalize::{Input, NormalizeConfig, Normalizer, YearPolicy};
use sentra_schemas::{EventColumns, EventRows, Quarantined, Signal};
use tokio::sync::watch;
use tokio::time::Instant;

use super::checkpoint::Checkpoints;
use super::{Driver, RunError};
use crate::outputs::{refused, Batch, Output, OutputError, Written};
use crate::sources::{Next, Positions, Source, SourceBatch, SourceError};

/// A brute force from one address, then a line ten minutes later, which closes its window.
const ATTACK: &[&str] = &[
    "Mar 16 10:00:00 bastion-1 sshd[2301]: Failed password for root from 203.0.113.7 port 50514 ssh2",
    "Mar 16 10:00:05 bastion-1 sshd[2302]: Failed password for root from 203.0.113.7 port 50516 ssh2",
    "Mar 16 10:00:10 bastion-1 sshd[2303]: Failed password for admin from 203.0.113.7 port 50518 ssh2",
    "Mar 16 10:00:15 bastion-1 sshd[2304]: Failed password for root from 203.0.113.7 port 50520 ssh2",
    "Mar 16 10:00:20 bastion-1 sshd[2305]: Failed password for admin from 203.0.113.7 port 50522 ssh2",
    "Mar 16 10:00:25 bastion-1 sshd[2306]: Failed password for root from 203.0.113.7 port 50524 ssh2",
    "Mar 16 10:10:00 bastion-1 sshd[2400]: Accepted publickey for alice from 10.0.0.5 port 50600 ssh2",
];

/// What the fake source and outputs saw, in order.
#[derive(Default)]
struct Seen {
    steps: Vec<String>,
    acked: Vec<Positions>,
    committed: Vec<Positions>,
    quarantined: Vec<Quarantined>,
}

type Shared = Arc<Mutex<Seen>>;

/// Hands out `batches` of syslog lines (offsets count lines on partition `test/0`), then stops.
struct Lines {
    batches: VecDeque<Vec<&'static str>>,
    normalizer: Normalizer,
    offset: i64,
    done: Positions,
    pending: bool,
    seen: Shared,
    /// The reader's clock, epoch µs; without it each line is read as it is written.
    read_at: Option<i64>,
}

impl Lines {
    fn new(batches: Vec<Vec<&'static str>>, seen: &Shared) -> Box<Self> {
        Box::new(Self {
            batches: batches.into(),
            normalizer: Normalizer::new(NormalizeConfig {
                year: YearPolicy::Fixed(2026),
                ..NormalizeConfig::default()
            }),
            offset: 0,
            done: Positions::new(),
            pending: false,
            seen: seen.clone(),
            read_at: None,
        })
    }
}

#[async_trait::async_trait]
impl Source for Lines {
    fn resume(&mut self, positions: Positions) {
        self.done = positions;
    }

    async fn next_batch(
        &mut self,
        _idle_until: Option<Instant>,
        _shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Next, SourceError> {
        let Some(lines) = self.batches.pop_front() else {
            return Ok(Next::Stopped);
        };
        let mut columns = EventColumns::with_capacity(lines.len());
        let mut quarantined = Vec::new();
        for line in &lines {
            let source = format!("test:0:{}", self.offset);
            let input = Input::line(line.as_bytes(), &source, Some("acme"), None);
            if let Err(q) = self.normalizer.normalize_into(&input, &mut columns) {
                quarantined.push(*q);
            }
            self.offset += 1;
        }
        let events = columns.into_batch();
        let written = events.column(2).as_primitive::<TimestampMicrosecondType>();
        let read_us = match self.read_at {
            Some(at) => vec![at; events.num_rows()],
            None => written.values().to_vec(),
        };
        Ok(Next::Batch(SourceBatch {
            events,
            read_us,
            quarantined,
            records: lines.len(),
            skipped: 0,
            positions: Positions::from([("test/0".to_owned(), self.offset)]),
        }))
    }

    fn ack(&mut self, positions: Positions) {
        self.done.extend(positions.clone());
        self.pending = true;
        self.seen.lock().unwrap().acked.push(positions);
    }

    fn positions(&self) -> &Positions {
        &self.done
    }

    fn pending(&self) -> bool {
        self.pending
    }

    fn commit(&mut self) -> Result<bool, SourceError> {
        self.pending = false;
        self.seen.lock().unwrap().committed.push(self.done.clone());
        Ok(true)
    }

    fn lossy_utf8(&self) -> u64 {
        0
    }
}

/// Records every step; can refuse the first event, fail transiently a number of times, or fail for good.
struct Recorder {
    name: &'static str,
    seen: Shared,
    refuse_first_event: bool,
    transient_failures: AtomicU32,
    permanent: bool,
}

impl Recorder {
    fn new(name: &'static str, seen: &Shared) -> Self {
        Self {
            name,
            seen: seen.clone(),
            refuse_first_event: false,
            transient_failures: AtomicU32::new(0),
            permanent: false,
        }
    }

    fn step(&self, step: &str, n: usize) {
        let line = format!("{} {step} {n}", self.name);
        self.seen.lock().unwrap().steps.push(line);
    }
}

#[async_trait::async_trait]
impl Output for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn write_events(&self, batch: &Batch<'_>) -> Result<Written, OutputError> {
        self.step("events", batch.events.num_rows());
        if self.permanent {
            return Err(OutputError::Permanent(format!(
                "{} rejects the schema",
                self.name
            )));
        }
        let failures = self.transient_failures.load(Ordering::SeqCst);
        if failures > 0 {
            self.transient_failures
                .store(failures - 1, Ordering::SeqCst);
            return Err(OutputError::Transient(format!("{} is down", self.name)));
        }
        let mut written = Written::stored(batch.events.num_rows());
        if self.refuse_first_event {
            let rows = EventRows::new(batch.events);
            written.refused = vec![refused(&rows.get(0), self.name, "value out of range")];
            written.stored -= 1;
        }
        Ok(written)
    }

    async fn write_quarantine(&self, quarantined: &[Quarantined]) -> Result<Written, OutputError> {
        self.step("quarantine", quarantined.len());
        self.seen
            .lock()
            .unwrap()
            .quarantined
            .extend_from_slice(quarantined);
        Ok(Written::stored(quarantined.len()))
    }

    async fn write_signals(&self, signals: &[Signal]) -> Result<Written, OutputError> {
        self.step("signals", signals.len());
        Ok(Written::stored(signals.len()))
    }
}

async fn drive(
    batches: Vec<Vec<&'static str>>,
    outputs: Vec<Recorder>,
    seen: &Shared,
    dir: &tempfile::TempDir,
) -> Result<super::RunStats, RunError> {
    drive_lines(Lines::new(batches, seen), outputs, dir).await
}

async fn drive_lines(
    source: Box<Lines>,
    outputs: Vec<Recorder>,
    dir: &tempfile::TempDir,
) -> Result<super::RunStats, RunError> {
    let driver = Driver {
        source,
        engine: Engine::new(catalog::builtin(), EngineConfig::default())
            .await
            .unwrap(),
        overrides: Overrides::default(),
        outputs: outputs
            .into_iter()
            .map(|o| Box::new(o) as Box<dyn Output>)
            .collect(),
        checkpoints: Checkpoints::new(
            "test",
            &dir.path().join("checkpoint.json"),
            Duration::from_secs(3600),
        ),
        allowed_lateness_secs: 30,
        health: Arc::default(),
    };
    let (_tx, mut rx) = watch::channel(false);
    driver.drive(&mut rx).await
}

#[tokio::test]
async fn a_batch_is_acknowledged_only_after_every_output_stored_every_step() {
    let (seen, dir) = (Shared::default(), tempfile::tempdir().unwrap());
    let outputs = vec![Recorder::new("a", &seen), Recorder::new("b", &seen)];
    let batches = vec![ATTACK[..6].to_vec(), ATTACK[6..].to_vec()];
    let stats = drive(batches, outputs, &seen, &dir).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.steps,
        [
            "a events 6",
            "b events 6",
            "a quarantine 0",
            "b quarantine 0",
            "a signals 0",
            "b signals 0",
            "a events 1",
            "b events 1",
            "a quarantine 0",
            "b quarantine 0",
            "a signals 1",
            "b signals 1"
        ]
    );
    let acked = Positions::from([("test/0".to_owned(), 7)]);
    assert_eq!(
        seen.acked,
        [Positions::from([("test/0".to_owned(), 6)]), acked.clone()]
    );
    assert_eq!(
        seen.committed,
        std::slice::from_ref(&acked),
        "committed once, at the end"
    );
    let checkpoint = super::Checkpoint::load(&dir.path().join("checkpoint.json"), "test")
        .unwrap()
        .expect("saved before the commit");
    assert_eq!(checkpoint.offsets, acked);
    assert_eq!((stats.events, stats.signals, stats.batches), (7, 1, 2));
    assert_eq!(stats.stored["a"], 8, "7 events and 1 signal");
}

#[tokio::test]
async fn a_line_dated_ahead_of_the_reader_does_not_make_the_tenants_other_hosts_late() {
    // Read at 10:00:30: web-2's line dated 10:04:50 (within the skew) comes while bastion-1 is quiet, then
    // bastion-1 is attacked.
    const AHEAD: &[&str] = &[
        "Mar 16 09:59:00 bastion-1 sshd[1]: Connection closed by 10.0.0.1 port 22",
        "Mar 16 10:04:50 web-2 sshd[2]: Connection closed by 10.0.0.1 port 22",
    ];
    let (seen, dir) = (Shared::default(), tempfile::tempdir().unwrap());
    let mut source = Lines::new(vec![AHEAD.to_vec(), ATTACK[..6].to_vec()], &seen);
    source.read_at = Some(1_773_655_230_000_000);
    let outputs = vec![Recorder::new("a", &seen)];
    let stats = drive_lines(source, outputs, &dir).await.unwrap();
    assert_eq!((stats.events, stats.late), (8, 0));
}

#[tokio::test]
async fn rows_an_output_refuses_reach_every_outputs_quarantine() {
    let (seen, dir) = (Shared::default(), tempfile::tempdir().unwrap());
    let mut b = Recorder::new("b", &seen);
    b.refuse_first_event = true;
    let stats = drive(
        vec![ATTACK.to_vec()],
        vec![Recorder::new("a", &seen), b],
        &seen,
        &dir,
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen.steps.contains(&"a quarantine 1".to_owned()),
        "{:?}",
        seen.steps
    );
    assert!(
        seen.steps.contains(&"b quarantine 1".to_owned()),
        "{:?}",
        seen.steps
    );
    let q = &seen.quarantined[0];
    assert_eq!(q.reason.as_str(), "rejected");
    assert!(q.detail.starts_with("b refused event "), "{}", q.detail);
    assert!(q.detail.ends_with(": value out of range"), "{}", q.detail);
    assert_eq!(q.original, ATTACK[0].as_bytes());
    assert_eq!(stats.quarantined, 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_the_batch_stored_once() {
    let (seen, dir) = (Shared::default(), tempfile::tempdir().unwrap());
    let a = Recorder::new("a", &seen);
    a.transient_failures.store(2, Ordering::SeqCst);
    drive(vec![ATTACK.to_vec()], vec![a], &seen, &dir)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.steps,
        [
            "a events 7",
            "a events 7",
            "a events 7",
            "a quarantine 0",
            "a signals 1"
        ]
    );
    assert_eq!(seen.acked.len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_stops_the_run_without_acknowledging() {
    let (seen, dir) = (Shared::default(), tempfile::tempdir().unwrap());
    let mut b = Recorder::new("b", &seen);
    b.permanent = true;
    let err = drive(
        vec![ATTACK.to_vec(), ATTACK.to_vec()],
        vec![Recorder::new("a", &seen), b],
        &seen,
        &dir,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RunError::Output(OutputError::Permanent(_))),
        "{err}"
    );
    assert!(
        err.to_string().contains("offsets were not committed"),
        "{err}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.steps, ["a events 7", "b events 7"]);
    assert!(seen.acked.is_empty() && seen.committed.is_empty());
    assert!(!dir.path().join("checkpoint.json").exists());
}
