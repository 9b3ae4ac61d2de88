//! ClickHouse: events, quarantine and signals, for analytics and dashboards. Rows ClickHouse refuses (a
//! value out of a column's range) are quarantined with its reason and the rest of the batch is stored.

use sentra_schemas::{EventRows, Quarantined, Signal};
use sentra_sinks::clickhouse::ClickHouseSink;

use super::{refused, Batch, Output, OutputError, Written};

/// The ClickHouse output.
pub struct ClickHouse(pub ClickHouseSink);

#[async_trait::async_trait]
impl Output for ClickHouse {
    fn name(&self) -> &'static str {
        "ClickHouse"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        let applied = self.0.migrate().await?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "ClickHouse schema migrated");
        }
        Ok(())
    }

    async fn write_events(&self, batch: &Batch<'_>) -> Result<Written, OutputError> {
        let rejected = self.0.write_events(batch.events).await?;
        let rows = EventRows::new(batch.events);
        Ok(Written {
            stored: (batch.events.num_rows() - rejected.len()) as u64,
            refused: rejected
                .iter()
                .map(|r| refused(&rows.get(r.row), self.name(), &r.detail))
                .collect(),
        })
    }

    async fn write_quarantine(&self, quarantined: &[Quarantined]) -> Result<Written, OutputError> {
        self.0.write_quarantine(quarantined).await?;
        Ok(Written::stored(quarantined.len()))
    }

    async fn write_signals(&self, signals: &[Signal]) -> Result<Written, OutputError> {
        self.0.write_signals(signals).await?;
        Ok(Written::stored(signals.len()))
    }
}
