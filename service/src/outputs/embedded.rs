//! The embedded store: events, quarantine and signals as Parquet and JSON under the data directory, for
//! `sentra replay` (and the queries, API and console over it) with no services. Local files have no transient
//! failures: every error is permanent.

use sentra_schemas::{Quarantined, Signal};
use sentra_sinks::embedded::EmbeddedStore;

use super::{Batch, Output, OutputError, Written};

/// The embedded store output.
pub struct Embedded(pub EmbeddedStore);

/// Every embedded-store error stops the replay, with the store's message.
fn failed(e: sentra_sinks::SinkError) -> OutputError {
    OutputError::Permanent(e.to_string())
}

#[async_trait::async_trait]
impl Output for Embedded {
    fn name(&self) -> &'static str {
        "the embedded store"
    }

    async fn write_events(&self, batch: &Batch<'_>) -> Result<Written, OutputError> {
        self.0.write_events(batch.events).map_err(failed)?;
        Ok(Written::stored(batch.events.num_rows()))
    }

    async fn write_quarantine(&self, quarantined: &[Quarantined]) -> Result<Written, OutputError> {
        self.0.write_quarantine(quarantined).map_err(failed)?;
        Ok(Written::stored(quarantined.len()))
    }

    async fn write_signals(&self, signals: &[Signal]) -> Result<Written, OutputError> {
        self.0.write_signals(signals).map_err(failed)?;
        Ok(Written::stored(signals.len()))
    }
}
