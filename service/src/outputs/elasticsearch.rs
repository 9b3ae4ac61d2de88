//! Elasticsearch, through a queue of its own: forensics indexing never holds back events, signals or SOAR.
//!
//! The run loop stores every event in ClickHouse first; this output then queues, on a Kafka topic, which of
//! the batch's events Elasticsearch should hold: those of the configured categories and every evidence event
//! of the batch's signals (including evidence stored by earlier batches). The forensics indexer
//! (`run/forensics.rs`) consumes that topic with a consumer group of its own, reads the events back from
//! ClickHouse (tenant-scoped) and indexes them; while Elasticsearch is down it waits and commits nothing,
//! and catches up from its committed offset when Elasticsearch returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use sentra_kafka::Producer;
use sentra_schemas::EventRows;
use serde::{Deserialize, Serialize};

use super::{Batch, Output, OutputError, Written};

/// The most event ids one queued message carries (about 150 KB of JSON).
const IDS_PER_MESSAGE: usize = 4096;

/// One unit of forensics work: events of one tenant to index, by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// The tenant the events belong to.
    pub tenant: String,
    /// Their event ids.
    pub ids: Vec<String>,
}

/// The forensics queue output.
pub struct ForensicsQueue {
    /// The producer, shared with the other Kafka outputs.
    pub producer: Producer,
    /// The queue topic (`<kafka.group_id>.forensics`).
    pub topic: String,
    /// Which categories Elasticsearch holds.
    pub config: sentra_sinks::elasticsearch::ElasticsearchConfig,
    /// Settings to create the topic with.
    pub client: sentra_kafka::ClientConfig,
}

impl ForensicsQueue {
    /// The batch's work: per tenant, the ids of its events of indexed categories and its signals' evidence.
    fn work(&self, batch: &Batch<'_>) -> Vec<Work> {
        let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in batch.signals {
            let evidence = s.evidence.iter().map(String::as_str);
            ids.entry(s.tenant.as_str()).or_default().extend(evidence);
        }
        let rows = EventRows::new(batch.events);
        for e in rows.iter() {
            if self.config.indexes_category(e.category) {
                ids.entry(e.tenant).or_default().insert(e.id);
            }
        }
        let mut work = Vec::new();
        for (tenant, ids) in ids {
            let ids: Vec<&str> = ids.into_iter().collect();
            for chunk in ids.chunks(IDS_PER_MESSAGE) {
                work.push(Work {
                    tenant: tenant.to_owned(),
                    ids: chunk.iter().map(|&id| id.to_owned()).collect(),
                });
            }
        }
        work
    }
}

#[async_trait::async_trait]
impl Output for ForensicsQueue {
    fn name(&self) -> &'static str {
        "the forensics queue"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        super::create_topics(&self.client, [self.topic.as_str()]).await
    }

    /// Queues the batch's work; a repeated write is harmless (documents are indexed by event id).
    async fn write_events(&self, batch: &Batch<'_>) -> Result<Written, OutputError> {
        let work = self.work(batch);
        let mut queued = 0;
        for w in &work {
            let body = serde_json::to_vec(w).expect("work serializes");
            let record = FutureRecord::<str, [u8]>::to(&self.topic)
                .key(&w.tenant)
                .payload(&body);
            self.producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|e| super::kafka_failure(self.name().to_owned(), &e))?;
            queued += w.ids.len();
        }
        Ok(Written::stored(queued))
    }
}
