//! Elasticsearch: forensics documents. Events of the configured categories are indexed, and so is every
//! evidence event of the batch's signals, fetched back from ClickHouse (tenant-scoped) when it was stored
//! in an earlier batch.

use std::collections::{BTreeMap, BTreeSet};

use sentra_schemas::{EventRef, EventRows, Quarantined};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::{document, Document, ElasticsearchSink};

use super::{refused, Batch, Output, OutputError, Written};

/// The Elasticsearch output, with the ClickHouse it fetches earlier evidence from.
pub struct Elasticsearch {
    /// Where documents go.
    pub sink: ElasticsearchSink,
    /// Where evidence stored by earlier batches is read back from.
    pub events: ClickHouseSink,
}

#[async_trait::async_trait]
impl Output for Elasticsearch {
    fn name(&self) -> &'static str {
        "Elasticsearch"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        Ok(self.sink.ensure_template().await?)
    }

    async fn write_events(&self, batch: &Batch<'_>) -> Result<Written, OutputError> {
        let es = &self.sink;
        let rows = EventRows::new(batch.events);
        let mut evidence: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in batch.signals {
            evidence
                .entry(s.tenant.as_str())
                .or_default()
                .extend(s.evidence.iter().map(String::as_str));
        }
        let mut docs: Vec<Document> = Vec::new();
        let mut origins: Vec<Quarantined> = Vec::new();
        let mut keep = |e: &EventRef<'_>, docs: &mut Vec<Document>| {
            docs.push(document(es, e));
            origins.push(refused(e, self.name(), ""));
        };
        for e in rows.iter() {
            let is_evidence = evidence
                .get_mut(e.tenant)
                .is_some_and(|ids| ids.remove(e.id));
            if is_evidence || es.config().indexes_category(e.category) {
                keep(&e, &mut docs);
            }
        }
        for (tenant, ids) in &evidence {
            if ids.is_empty() {
                continue;
            }
            let ids: Vec<&str> = ids.iter().copied().collect();
            let stored = self.events.events_by_id(tenant, &ids).await?;
            // Events of indexed categories were indexed (or quarantined) when they were stored.
            for e in stored
                .iter()
                .filter(|e| !es.config().indexes_category(&e.category))
            {
                keep(&e.as_event_ref(), &mut docs);
            }
        }
        let rejected = es.index(&docs).await?;
        Ok(Written {
            stored: (docs.len() - rejected.len()) as u64,
            refused: rejected
                .into_iter()
                .map(|r| {
                    let mut q = origins[r.position].clone();
                    q.detail = format!("{}(HTTP {}) {}", q.detail, r.status, r.detail);
                    q
                })
                .collect(),
        })
    }
}
