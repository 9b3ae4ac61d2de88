//! Where batches come from. A [`Source`] reads records, normalizes them into an Arrow batch as they arrive
//! (quarantining what cannot be read), and hands the batch over with its [`Positions`]. The run loop
//! acknowledges a batch once every output stored it; acknowledged positions are saved in the checkpoint
//! with the engine state, and only then committed back to the source, so nothing is lost or counted twice.
//!
//! - [`kafka`]: a consumer group over the configured topics (positions: `topic/partition` → next offset).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use sentra_schemas::Quarantined;
use tokio::sync::watch;
use tokio::time::Instant;

pub mod kafka;

/// Where a source stands: the next position to read, per part of the source (`topic/partition` for Kafka).
pub type Positions = BTreeMap<String, i64>;

/// A batch read from a source.
pub struct SourceBatch {
    /// The normalized events.
    pub events: RecordBatch,
    /// When each event was read (epoch µs, the reader's clock), by row.
    pub read_us: Vec<i64>,
    /// Records that could not be normalized, with their reasons.
    pub quarantined: Vec<Quarantined>,
    /// Records received, skipped ones included.
    pub records: usize,
    /// Records skipped because the checkpointed state already holds them.
    pub skipped: usize,
    /// The positions after this batch, to acknowledge once every output stored it.
    pub positions: Positions,
}

/// What waiting for a batch gave.
pub enum Next {
    /// A batch.
    Batch(SourceBatch),
    /// Nothing arrived before the deadline.
    Idle,
    /// Shutdown was requested (or the input ended).
    Stopped,
}

/// Why a source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Kafka could not be set up or read.
    #[error("Kafka: {0} (check kafka.brokers and that the broker is reachable)")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// A source of batches whose positions are acknowledged after storage and committed after checkpoints.
#[async_trait::async_trait]
pub trait Source: Send {
    /// Resumes from a checkpoint: records before `positions` are already in the restored state and are
    /// skipped if they are delivered again.
    fn resume(&mut self, positions: Positions);

    /// The next batch: waits for its first record (until `idle_until`, if given, or shutdown), then fills
    /// it until it is full or its wait runs out.
    async fn next_batch(
        &mut self,
        idle_until: Option<Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Next, SourceError>;

    /// Acknowledges that every output stored the batch that ended at `positions`: its effects are in the
    /// engine state, and the next checkpoint covers it.
    fn ack(&mut self, positions: Positions);

    /// Every acknowledged position: what a checkpoint saves with the engine state.
    fn positions(&self) -> &Positions;

    /// Whether acknowledged batches wait to be committed.
    fn pending(&self) -> bool;

    /// Commits the acknowledged positions to the source; call only once a checkpoint holding them is saved.
    /// Returns whether the commit succeeded (a failed commit only means batches may be read again).
    fn commit(&mut self) -> Result<bool, SourceError>;

    /// Records decoded lossily (not valid UTF-8) so far.
    fn lossy_utf8(&self) -> u64;
}
