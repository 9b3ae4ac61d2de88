//! The output contract. Every store and queue a batch goes to implements [`Output`]; the run loop hands each
//! batch to every output in three steps (events, then quarantine, then signals), retries what an output
//! says may succeed later, and acknowledges the batch's positions only when every output answered.
//!
//! A step answers [`Written`] (how much was stored, and the events refused, each as a quarantine record with
//! the output's reason; they join the batch's quarantine before the quarantine step) or an [`OutputError`]
//! that says whether retrying can help. A new output is one file here implementing [`Output`], its
//! `[section]` in the configuration, and one line in [`crate::run`] where the outputs are listed.
//!
//! - [`clickhouse`]: events, quarantine and signals for analytics and dashboards.
//! - [`elasticsearch`]: the forensics queue: which events Elasticsearch should hold (chosen categories and
//!   every signal's evidence), indexed beside the loop by `run/forensics.rs`.
//! - [`embedded`]: the local store of `sentra replay` (Parquet and JSON under the data directory).
//! - [`quarantine`]: the quarantine topic, each record's original bytes with why and where from.
//! - [`audit`]: the audit trail's record of every emitted signal and applied override.
//! - [`soar`]: the SOAR delivery queue.

use arrow::array::RecordBatch;
use sentra_schemas::{EventRef, QuarantineReason, Quarantined, Signal};
use sentra_sinks::SinkError;

pub mod audit;
pub mod clickhouse;
pub mod elasticsearch;
pub mod embedded;
pub mod quarantine;
pub mod soar;

/// One batch on its way to the outputs.
pub struct Batch<'a> {
    /// The batch's events.
    pub events: &'a RecordBatch,
    /// The signals the batch closed (overrides applied).
    pub signals: &'a [Signal],
}

/// What an output stored of one step.
#[derive(Debug, Default)]
pub struct Written {
    /// Rows, records or signals stored.
    pub stored: u64,
    /// Events the output refused, as quarantine records carrying its reason (see [`refused`]).
    pub refused: Vec<Quarantined>,
}

impl Written {
    /// `stored` items, none refused.
    pub fn stored(stored: usize) -> Self {
        Self {
            stored: stored as u64,
            refused: Vec::new(),
        }
    }
}

/// Why an output could not store a step.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The destination is unavailable for now; the same write may succeed later.
    #[error("{0}")]
    Transient(String),
    /// The destination cannot take this write; retrying will not help.
    #[error("{0}")]
    Permanent(String),
}

impl OutputError {
    /// Whether retrying the same write later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, OutputError::Transient(_))
    }
}

/// The stores' own classification: unavailable is transient, anything else permanent.
impl From<SinkError> for OutputError {
    fn from(e: SinkError) -> Self {
        match e.is_retryable() {
            true => OutputError::Transient(e.to_string()),
            false => OutputError::Permanent(e.to_string()),
        }
    }
}

/// An output of `sentra run`: a store or queue each batch is written to before its positions are
/// acknowledged. Every step has a default that stores nothing, so an output implements the steps it takes.
#[async_trait::async_trait]
pub trait Output: Send + Sync {
    /// The output's name in logs, errors and statistics.
    fn name(&self) -> &'static str;

    /// Readies the destination (schema, template, topics) before the first batch; retried like writes.
    async fn prepare(&self) -> Result<(), OutputError> {
        Ok(())
    }

    /// Stores the batch's events (first step).
    async fn write_events(&self, _batch: &Batch<'_>) -> Result<Written, OutputError> {
        Ok(Written::default())
    }

    /// Stores the batch's quarantine: records refused at normalization, late events, and every event an
    /// output refused in the first step (second step).
    async fn write_quarantine(&self, _quarantined: &[Quarantined]) -> Result<Written, OutputError> {
        Ok(Written::default())
    }

    /// Stores or hands on the batch's signals (last step).
    async fn write_signals(&self, _signals: &[Signal]) -> Result<Written, OutputError> {
        Ok(Written::default())
    }
}

/// Creates the Kafka `topics` an output writes to, unless they exist.
async fn create_topics<'a>(
    client: &sentra_kafka::ClientConfig,
    topics: impl IntoIterator<Item = &'a str>,
) -> Result<(), OutputError> {
    for topic in topics {
        sentra_kafka::topics::ensure(client, topic)
            .await
            .map_err(|e| OutputError::Permanent(format!("Kafka: cannot create topic {topic}: {e} (check kafka.brokers and that the broker is reachable)")))?;
    }
    Ok(())
}

/// A failed Kafka send as an output error: permanent when the broker or client refuses the message for good
/// ([`sentra_kafka::is_permanent`]), transient otherwise. Every Kafka output's writes may be repeated: the
/// audit chain and SOAR receivers deduplicate by id, and quarantine records name their source offset.
fn kafka_failure(what: String, e: &sentra_kafka::KafkaError) -> OutputError {
    match sentra_kafka::is_permanent(e) {
        true => OutputError::Permanent(format!(
            "{what}: {e} (check the topic's permissions and message.max.bytes in kafka.properties and on the broker)"
        )),
        false => OutputError::Transient(format!("{what}: {e}")),
    }
}

/// A stored event that `output` refused, as a quarantine record carrying the output's reason.
pub fn refused(e: &EventRef<'_>, output: &str, reason: &str) -> Quarantined {
    Quarantined {
        reason: QuarantineReason::Rejected,
        detail: format!("{output} refused event {}: {reason}", e.id),
        tenant: Some(e.tenant.to_owned()),
        source: e.source.to_owned(),
        original: e.original.as_bytes().to_vec(),
    }
}
