//! Recording and chaining the audit trail.
//!
//! Writers ([`AuditLog::record`]) put [`AuditEvent`]s on the audit topic, keyed by tenant, and await the
//! broker, before they acknowledge their own work. One chainer ([`chain`], a consumer group, so exactly one
//! instance per partition at a time) reads them in order, drops events already chained (by record id, so
//! re-sent events are chained once), links each to its tenant's last record in ClickHouse, writes the
//! records, and only then commits. Kafka provides the total order per tenant; nothing here coordinates.
//! With an [`Anchoring`], the chainer also signs each tenant's new head every `every` (and at shutdown)
//! and appends it to the anchor topic ([`crate::anchor`]); [`verify_trails`] checks chains against them.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use sentra_retry::{retry, Backoff, Failure, Policy, Verdict};
use sentra_schemas::audit::{chain as link, verify, AuditEvent, AuditRecord, ChainBreak};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::SinkError;
use tokio::sync::watch;
use tracing::{info, warn};

use sentra_kafka::Producer;

use crate::anchor::{self, Anchor, AnchorBreak, AnchorKey};

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

/// How the chainer anchors the chains: the key, the anchor topic, how often.
#[derive(Debug, Clone)]
pub struct Anchoring {
    /// The signing key.
    pub key: AnchorKey,
    /// The Kafka topic anchors are appended to.
    pub topic: String,
    /// How often new heads are signed.
    pub every: Duration,
}

/// The heads chained since the last anchors, signed and published when due.
struct Anchorer {
    anchoring: Anchoring,
    producer: Producer,
    due: BTreeMap<String, AuditRecord>,
}

impl Anchorer {
    fn new(client: &ClientConfig, anchoring: Anchoring) -> Result<Self, KafkaError> {
        Ok(Self {
            producer: Producer::acknowledged(client)?,
            anchoring,
            due: BTreeMap::new(),
        })
    }

    /// Notes the newest record of each tenant in `written`.
    fn chained(&mut self, written: &[AuditRecord]) {
        for r in written {
            self.due.insert(r.tenant.clone(), r.clone());
        }
    }

    /// Signs and publishes the heads noted since the last call; on failure they stay due.
    async fn anchor(&mut self) {
        if self.due.is_empty() {
            return;
        }
        let now = sentra_schemas::time::now_us();
        let key = &self.anchoring.key;
        let anchors: Vec<Anchor> = self
            .due
            .values()
            .map(|r| Anchor::sign(key, r, now))
            .collect();
        match anchor::publish(&self.producer, &self.anchoring.topic, &anchors).await {
            Ok(()) => self.due.clear(),
            Err(e) => {
                warn!(error = %e, "could not append audit anchors; retrying at the next interval")
            }
        }
    }
}

/// Chains audit events from `topic` into ClickHouse until `shutdown`, committing after each write, and
/// anchors the heads with `anchoring` when given.
pub async fn chain(
    client: &ClientConfig,
    group: &str,
    topic: &str,
    store: &ClickHouseSink,
    anchoring: Option<Anchoring>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<u64, AuditError> {
    let consumer = sentra_kafka::consumer::group(client, group, &[topic])?;
    let every = anchoring
        .as_ref()
        .map_or(Duration::from_secs(3600), |a| a.every);
    let mut anchorer = anchoring.map(|a| Anchorer::new(client, a)).transpose()?;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut chained = 0u64;
    info!(
        group,
        topic,
        anchored = anchorer.is_some(),
        "chaining the audit trail"
    );
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m?,
            _ = tick.tick() => {
                if let Some(a) = &mut anchorer {
                    a.anchor().await;
                }
                continue;
            }
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
            Err(Failure::Interrupted) => break,
            Err(Failure::Permanent(e) | Failure::Exhausted(e)) => return Err(e.into()),
        };
        chained += written.len() as u64;
        if let Some(a) = &mut anchorer {
            a.chained(&written);
        }
        sentra_kafka::consumer::commit_after(&consumer, &messages);
    }
    if let Some(a) = &mut anchorer {
        a.anchor().await;
    }
    Ok(chained)
}

/// Why a tenant's audit trail does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailBreak {
    /// The chain itself is broken: a record was edited, removed or reordered.
    #[error("{0}; restore the audit table from a backup and investigate who could write to it")]
    Chain(ChainBreak),
    /// The chain does not match its anchors: truncated, rewritten, or the anchors do not verify.
    #[error(transparent)]
    Anchor(AnchorBreak),
}

/// A tenant's verified trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Records in the chain.
    pub records: usize,
    /// The newest anchored seq (`None`: not anchored).
    pub anchored: Option<u64>,
}

/// Checks one tenant's records (in seq order): the chain on its own, then against its anchors.
pub fn verify_trail(
    tenant: &str,
    records: &[AuditRecord],
    anchors: &[Anchor],
    key: Option<&AnchorKey>,
) -> Result<Verified, TrailBreak> {
    let n = verify(records).map_err(TrailBreak::Chain)?;
    let anchored = anchor::check(tenant, records, anchors, key).map_err(TrailBreak::Anchor)?;
    Ok(Verified {
        records: n,
        anchored,
    })
}

/// Verifies the trail of every tenant in `tenants` (all tenants with a chain or an anchor when empty)
/// against the anchors read from `anchor_topic`.
pub async fn verify_trails(
    store: &ClickHouseSink,
    client: &ClientConfig,
    anchor_topic: &str,
    key: Option<&AnchorKey>,
    tenants: &[String],
) -> Result<Vec<(String, Result<Verified, TrailBreak>)>, AuditError> {
    let mut anchors = anchor::read(client, anchor_topic).await?;
    let tenants = if tenants.is_empty() {
        let mut all = store.audit_tenants().await?;
        all.extend(anchors.keys().cloned());
        all.sort();
        all.dedup();
        all
    } else {
        tenants.to_vec()
    };
    let mut out = Vec::new();
    for t in tenants {
        let records = store.audit_records(&t).await?;
        let theirs = anchors.remove(&t).unwrap_or_default();
        let result = verify_trail(&t, &records, &theirs, key);
        out.push((t, result));
    }
    Ok(out)
}
