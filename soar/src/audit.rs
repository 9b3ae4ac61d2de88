//! Recording and chaining the audit trail.
//!
//! Writers ([`AuditLog::record`]) put [`AuditEvent`]s on the audit topic, keyed by tenant, and await the
//! broker, before they acknowledge their own work. One chainer ([`chain`], a consumer group, so exactly one
//! instance per partition at a time) reads them in order, drops events already chained (by record id, so
//! re-sent events are chained once), links each to its tenant's last record in ClickHouse, writes the
//! records, and only then commits. Kafka provides the total order per tenant; nothing here coordinates.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::TopicPartitionList;
use sentra_retry::{retry, Backoff, Failure, Policy, Verdict};
use sentra_schemas::audit::{chain as link, verify, AuditEvent, AuditRecord, ChainBreak};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::SinkError;
use tokio::sync::watch;
use tracing::{info, warn};

use sentra_kafka::Producer;

/// Why auditing failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Kafka failed.
    #[error("Kafka: {0} (check kafka.brokers and that the audit topic exists)")]
    Kafka(#[from] KafkaError),
    /// ClickHouse failed.
    #[error(transparent)]
    Store(#[from] SinkError),
}

/// The writers' side: puts audit events on the audit topic.
#[derive(Clone)]
pub struct AuditLog {
    producer: Producer,
    topic: String,
}

impl AuditLog {
    /// A log writing to `topic`.
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: Producer::acknowledged(client)?,
            topic: topic.into(),
        })
    }

    /// Records `events` (in order per tenant) and waits until the broker has them all.
    pub async fn record(&self, events: &[AuditEvent]) -> Result<(), KafkaError> {
        for e in events {
            let payload = serde_json::to_vec(e).expect("audit events serialize");
            let record = FutureRecord::to(&self.topic)
                .key(&e.tenant)
                .payload(&payload);
            self.producer.send(record, Duration::from_secs(30)).await?;
        }
        Ok(())
    }
}

/// Links `events` (in arrival order) onto their tenants' chains in ClickHouse and writes them; events whose
/// record id is already chained are skipped. Returns the records written.
pub async fn append(
    store: &ClickHouseSink,
    events: Vec<AuditEvent>,
) -> Result<Vec<AuditRecord>, SinkError> {
    let mut by_tenant: BTreeMap<String, Vec<AuditEvent>> = BTreeMap::new();
    for e in events {
        by_tenant.entry(e.tenant.clone()).or_default().push(e);
    }
    let tenants: Vec<&str> = by_tenant.keys().map(String::as_str).collect();
    let mut heads: BTreeMap<String, AuditRecord> = store
        .audit_heads(&tenants)
        .await?
        .into_iter()
        .map(|r| (r.tenant.clone(), r))
        .collect();
    let mut out = Vec::new();
    for (tenant, events) in by_tenant {
        let ids: Vec<&str> = events.iter().map(|e| e.record_id.as_str()).collect();
        let mut known: std::collections::BTreeSet<String> = store
            .audit_known(&tenant, &ids)
            .await?
            .into_iter()
            .collect();
        for e in events {
            if !known.insert(e.record_id.clone()) {
                continue;
            }
            let record = link(heads.get(&tenant), e);
            heads.insert(tenant.clone(), record.clone());
            out.push(record);
        }
    }
    store.write_audit(&out).await?;
    Ok(out)
}

/// Chains audit events from `topic` into ClickHouse until `shutdown`, committing after each write.
pub async fn chain(
    client: &ClientConfig,
    group: &str,
    topic: &str,
    store: &ClickHouseSink,
    mut shutdown: watch::Receiver<bool>,
) -> Result<u64, AuditError> {
    let consumer = sentra_kafka::consumer::group(client, group, &[topic])?;
    let mut chained = 0u64;
    info!(group, topic, "chaining the audit trail");
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m?,
            _ = shutdown.changed() => break,
        };
        let mut messages = vec![first.detach()];
        while messages.len() < 1000 {
            match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
                Ok(m) => messages.push(m?.detach()),
                Err(_) => break,
            }
        }
        let mut events = Vec::new();
        for m in &messages {
            match serde_json::from_slice::<AuditEvent>(m.payload().unwrap_or_default()) {
                Ok(e) => events.push(e),
                Err(e) => {
                    warn!(offset = m.offset(), error = %e, "skipping a message that is not an audit event")
                }
            }
        }
        let policy = Policy::until_shutdown(Backoff::STORES);
        let write = |_| append(store, events.clone());
        let classify = |e: &SinkError| Verdict::retry_if(e.is_retryable());
        let written = match retry(&policy, &mut shutdown, write, classify, |_, e, wait| {
            warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "audit write failed; retrying")
        })
        .await
        {
            Ok(w) => w,
            Err(Failure::Interrupted) => return Ok(chained),
            Err(Failure::Permanent(e) | Failure::Exhausted(e)) => return Err(e.into()),
        };
        chained += written.len() as u64;
        let mut tpl = TopicPartitionList::new();
        for m in &messages {
            tpl.add_partition_offset(
                m.topic(),
                m.partition(),
                rdkafka::Offset::Offset(m.offset() + 1),
            )?;
        }
        consumer.commit(&tpl, CommitMode::Sync)?;
    }
    Ok(chained)
}

/// Verifies the chain of every tenant in `tenants` (all tenants when empty): (tenant, records verified or
/// where it breaks).
pub async fn verify_chains(
    store: &ClickHouseSink,
    tenants: &[String],
) -> Result<Vec<(String, Result<usize, ChainBreak>)>, SinkError> {
    let tenants = if tenants.is_empty() {
        store.audit_tenants().await?
    } else {
        tenants.to_vec()
    };
    let mut out = Vec::new();
    for t in tenants {
        let records = store.audit_records(&t).await?;
        out.push((t, verify(&records)));
    }
    Ok(out)
}
