//! Where Sentra's output goes. Each sink acknowledges a batch only once it is durably stored, so the
//! drivers can commit source offsets after the ack and never before.
//!
//! - [`embedded`]: the no-services default: Parquet files per tenant under a data directory, readable by
//!   DataFusion, plus a quarantine file.
//! - [`clickhouse`]: analytics store (events, signals, quarantine, rollups), idempotent by stable ids.
//! - [`elasticsearch`]: forensics store (ECS documents per tenant and month), idempotent by `_id`.
//! - [`durable`]: replacing a local file so a crash leaves the old contents or the new, whole.

#![warn(missing_docs)]

pub mod clickhouse;
pub mod durable;
pub mod elasticsearch;
pub mod embedded;

/// A sink failure, saying whose fault it is and whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store is unreachable or answered with a transient error: retry with backoff.
    #[error("{store} is unavailable: {detail} (retrying may help; check that it is running and reachable)")]
    Unavailable {
        /// Which store.
        store: &'static str,
        /// What it said.
        detail: String,
    },
    /// The store rejected the request (schema, permissions, bad data): retrying will not help.
    #[error("{store} rejected the write: {detail}")]
    Rejected {
        /// Which store.
        store: &'static str,
        /// What it said.
        detail: String,
    },
    /// The store refused a value in this write (a type, range or constraint violation): the rows at
    /// fault should be quarantined with this reason and the rest written.
    #[error("{store} refused the data: {detail}")]
    Invalid {
        /// Which store.
        store: &'static str,
        /// What it said.
        detail: String,
    },
    /// Local I/O failed (disk full, permissions).
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl SinkError {
    /// Whether retrying the same write later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable { .. })
    }
}
