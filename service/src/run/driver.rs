//! The loop of `sentra run`, apart from how its parts are built: source → engine → outputs →
//! acknowledgement → checkpoint and commit.

use std::sync::Arc;

use sentra_pipeline::detect::{Engine, Overrides};
use sentra_retry::{retry, Backoff, Failure, Policy, Verdict};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::checkpoint::Checkpoints;
use super::{RunError, RunStats};
use crate::health::Health;
use crate::outputs::{Batch, Output, OutputError};
use crate::replay::late_record;
use crate::sources::{Next, Source, SourceBatch};

/// Everything the loop drives.
pub struct Driver {
    /// Where batches come from.
    pub source: Box<dyn Source>,
    /// The detection engine (restored from the checkpoint, if any).
    pub engine: Engine,
    /// Analyst overrides applied to every signal.
    pub overrides: Overrides,
    /// Where every batch goes, in this order within each step.
    pub outputs: Vec<Box<dyn Output>>,
    /// When to checkpoint, and where.
    pub checkpoints: Checkpoints,
    /// The engine's allowed lateness, named in late events' quarantine records.
    pub allowed_lateness_secs: u64,
    /// Where the engine's counts of state shed are reported (`/metrics`).
    pub health: Arc<Health>,
}

impl Driver {
    /// Runs batches until the source stops or `shutdown` turns true (or an unrecoverable error). A batch is
    /// acknowledged to the source only after every output stored every step of it; acknowledged positions
    /// are committed only after a checkpoint holding them is saved.
    pub async fn drive(
        mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<RunStats, RunError> {
        let mut stats = RunStats::default();
        self.health.set_state_shed(self.engine.shed());
        loop {
            // A quiet source still gets its stored batches checkpointed and committed when the interval is up.
            let idle_until = self.source.pending().then(|| self.checkpoints.due_at());
            let SourceBatch {
                events,
                read_us,
                mut quarantined,
                records,
                skipped,
                positions,
            } = match self.source.next_batch(idle_until, shutdown).await? {
                Next::Batch(b) => b,
                Next::Idle => {
                    stats.commits += self
                        .checkpoints
                        .save_and_commit(&self.engine, self.source.as_mut())?
                        as u64;
                    continue;
                }
                Next::Stopped => break,
            };
            let shed_before = self.engine.state_overflow();
            let outcome = self.engine.process_live(&events, &read_us).await?;
            if self.engine.state_overflow() != shed_before {
                self.health.set_state_shed(self.engine.shed());
            }
            stats.late += outcome.late_rows.len() as u64;
            for &row in &outcome.late_rows {
                quarantined.push(late_record(&events, row, self.allowed_lateness_secs));
            }
            let mut signals = outcome.signals;
            signals.iter_mut().for_each(|s| self.overrides.apply(s));

            let batch = Batch {
                events: &events,
                signals: &signals,
            };
            for o in &self.outputs {
                let written = with_retry(o.as_ref(), shutdown, |_| o.write_events(&batch)).await?;
                stats.stored(o.name(), written.stored);
                quarantined.extend(written.refused);
            }
            for o in &self.outputs {
                let written =
                    with_retry(o.as_ref(), shutdown, |_| o.write_quarantine(&quarantined)).await?;
                stats.stored(o.name(), written.stored);
            }
            for o in &self.outputs {
                let written =
                    with_retry(o.as_ref(), shutdown, |_| o.write_signals(&signals)).await?;
                stats.stored(o.name(), written.stored);
            }

            self.source.ack(positions);
            if Instant::now() >= self.checkpoints.due_at() {
                stats.commits += self
                    .checkpoints
                    .save_and_commit(&self.engine, self.source.as_mut())?
                    as u64;
            }
            stats.consumed += (records - skipped) as u64;
            stats.events += events.num_rows() as u64;
            stats.quarantined += quarantined.len() as u64 - outcome.late_rows.len() as u64;
            stats.signals += signals.len() as u64;
            stats.batches += 1;
            stats.lossy_utf8 = self.source.lossy_utf8();
            info!(
                messages = records,
                skipped,
                events = events.num_rows(),
                quarantined = quarantined.len(),
                signals = signals.len(),
                "batch stored"
            );
        }
        stats.state_shed = self.engine.shed().clone();
        if self.source.pending() {
            stats.commits +=
                self.checkpoints
                    .save_and_commit(&self.engine, self.source.as_mut())? as u64;
        }
        Ok(stats)
    }
}

/// Runs `op` against `output` through the retry engine: retried with backoff while the output says a retry
/// can help, until shutdown.
pub(super) async fn with_retry<T, F: std::future::Future<Output = Result<T, OutputError>>>(
    output: &dyn Output,
    shutdown: &mut watch::Receiver<bool>,
    op: impl FnMut(u32) -> F,
) -> Result<T, RunError> {
    let name = output.name();
    let classify = |e: &OutputError| Verdict::retry_if(e.is_transient());
    let log = |_, e: &OutputError, wait: std::time::Duration| warn!(output = name, error = %e, retry_in_ms = wait.as_millis() as u64, "write failed; retrying");
    match retry(
        &Policy::until_shutdown(Backoff::STORES),
        shutdown,
        op,
        classify,
        log,
    )
    .await
    {
        Ok(v) => Ok(v),
        Err(Failure::Interrupted) => Err(RunError::Interrupted(name)),
        Err(Failure::Permanent(e) | Failure::Exhausted(e)) => Err(e.into()),
    }
}
