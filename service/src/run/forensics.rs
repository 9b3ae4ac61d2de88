//! The forensics indexer: consumes the forensics queue (see `outputs/elasticsearch.rs`) with a consumer
//! group of its own, reads each unit's events back from ClickHouse and indexes them in Elasticsearch. Its
//! offsets are committed only after Elasticsearch acknowledged, so an outage holds back only this worker,
//! and it catches up, losing nothing, when Elasticsearch returns.

use std::time::Duration;

use rdkafka::message::Message;
use sentra_retry::{retry, Backoff, Failure, Policy, Verdict};
use sentra_schemas::{Quarantined, TenantId};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::{document, ElasticsearchSink};
use sentra_sinks::SinkError;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::outputs::elasticsearch::Work;
use crate::outputs::refused;

/// The forensics queue's topic: `<kafka.group_id>.forensics`.
pub fn topic(config: &crate::config::Config) -> String {
    format!("{}.forensics", config.kafka.group_id)
}

/// Most queued messages indexed together.
const MESSAGES_PER_ROUND: usize = 64;

/// Why the indexer stopped (its supervisor restarts it).
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// Reading or committing the queue failed.
    #[error("forensics queue: {0}")]
    Kafka(#[from] sentra_kafka::KafkaError),
    /// A store refused a request in a way retrying cannot fix.
    #[error(transparent)]
    Store(#[from] SinkError),
}

/// Where the indexer reads from and writes to.
pub struct Indexer {
    /// Kafka client settings.
    pub client: sentra_kafka::ClientConfig,
    /// The indexer's consumer group (`<kafka.group_id>-forensics`).
    pub group: String,
    /// The queue topic.
    pub topic: String,
    /// Where the events are read back from, and refused documents are quarantined.
    pub clickhouse: ClickHouseSink,
    /// Where documents go.
    pub elasticsearch: ElasticsearchSink,
}

impl Indexer {
    /// Indexes queued work until `shutdown`; returns the documents indexed.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<u64, IndexerError> {
        let es = &self.elasticsearch;
        if self
            .stored(&mut shutdown, |_| es.ensure_template())
            .await?
            .is_none()
        {
            return Ok(0);
        }
        let consumer = sentra_kafka::consumer::group(&self.client, &self.group, &[&self.topic])?;
        info!(group = %self.group, topic = %self.topic, "indexing forensics");
        let mut indexed = 0;
        loop {
            let first = tokio::select! {
                m = consumer.recv() => m?,
                _ = shutdown.changed() => break,
            };
            let mut messages = vec![first.detach()];
            while messages.len() < MESSAGES_PER_ROUND {
                match tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await {
                    Ok(m) => messages.push(m?.detach()),
                    Err(_) => break,
                }
            }
            for m in &messages {
                let work = match serde_json::from_slice::<Work>(m.payload().unwrap_or_default()) {
                    Ok(w) if TenantId::check(&w.tenant).is_ok() => w,
                    _ => {
                        warn!(
                            offset = m.offset(),
                            "skipping a message that is not forensics work"
                        );
                        continue;
                    }
                };
                match self.index(&work, &mut shutdown).await? {
                    Some(n) => indexed += n,
                    None => return Ok(indexed),
                }
            }
            sentra_kafka::consumer::commit_after(&consumer, &messages);
        }
        Ok(indexed)
    }

    /// Indexes one unit of work: its events read back from ClickHouse (those ClickHouse refused are not
    /// there, and were quarantined by the run loop), documents Elasticsearch refuses quarantined in
    /// ClickHouse. `None` when shutdown came first.
    async fn index(
        &self,
        work: &Work,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<u64>, IndexerError> {
        let ids: Vec<&str> = work.ids.iter().map(String::as_str).collect();
        let ch = &self.clickhouse;
        let Some(events) = self
            .stored(shutdown, |_| ch.events_by_id(&work.tenant, &ids))
            .await?
        else {
            return Ok(None);
        };
        let es = &self.elasticsearch;
        let docs: Vec<_> = events
            .iter()
            .map(|e| document(es, &e.as_event_ref()))
            .collect();
        let Some(rejected) = self.stored(shutdown, |_| es.index(&docs)).await? else {
            return Ok(None);
        };
        if !rejected.is_empty() {
            let quarantined: Vec<Quarantined> = rejected
                .iter()
                .map(|r| {
                    let e = events[r.position].as_event_ref();
                    let reason = format!("(HTTP {}) {}", r.status, r.detail);
                    refused(&e, "Elasticsearch", &reason)
                })
                .collect();
            warn!(tenant = %work.tenant, refused = quarantined.len(), "Elasticsearch refused documents; quarantined");
            if self
                .stored(shutdown, |_| ch.write_quarantine(&quarantined))
                .await?
                .is_none()
            {
                return Ok(None);
            }
        }
        Ok(Some((docs.len() - rejected.len()) as u64))
    }

    /// Runs a store request, retried while the store is unavailable; `None` when shutdown came first.
    async fn stored<T, F: std::future::Future<Output = Result<T, SinkError>>>(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        request: impl FnMut(u32) -> F,
    ) -> Result<Option<T>, IndexerError> {
        let classify = |e: &SinkError| Verdict::retry_if(e.is_retryable());
        let log = |_, e: &SinkError, wait: Duration| warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "forensics indexing waits for the store");
        let policy = Policy::until_shutdown(Backoff::STORES);
        match retry(&policy, shutdown, request, classify, log).await {
            Ok(v) => Ok(Some(v)),
            Err(Failure::Interrupted) => Ok(None),
            Err(Failure::Permanent(e) | Failure::Exhausted(e)) => Err(e.into()),
        }
    }
}
