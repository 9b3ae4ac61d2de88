//! The Kafka source: a member of the configured consumer group, normalizing each message into the batch as
//! it arrives (so none is copied), and committing offsets only when told to.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sentra_pipeline::normalize::{Input, Normalizer};
use sentra_schemas::{EventColumns, Quarantined};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::info;

use super::{Next, Positions, Source, SourceBatch, SourceError};
use crate::config::KafkaConfig;

/// A consumer-group member over `kafka.topics`.
pub struct KafkaSource {
    consumer: StreamConsumer,
    normalizer: Normalizer,
    topic_tenants: BTreeMap<String, String>,
    max_messages: usize,
    max_bytes: usize,
    max_wait: Duration,
    /// Per `topic/partition`, the offset below which messages are in the engine state.
    done: Positions,
    /// Offsets of batches acknowledged since the last commit.
    uncommitted: BTreeMap<(String, i32), i64>,
}

impl KafkaSource {
    /// Joins `config.group_id` on `config.topics` with the group members' client settings (see
    /// [`crate::config::Config::kafka_consumer_client`]); messages are normalized by `normalizer`.
    pub fn new(
        client: &sentra_kafka::ClientConfig,
        config: &KafkaConfig,
        normalizer: Normalizer,
    ) -> Result<Self, SourceError> {
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        let consumer = sentra_kafka::consumer::group(client, &config.group_id, &topics)?;
        info!(brokers = %config.brokers, group = %config.group_id, topics = ?topics, "consuming");
        Ok(Self {
            consumer,
            normalizer,
            topic_tenants: config.topic_tenants.clone(),
            max_messages: config.batch_max_messages,
            max_bytes: config.batch_max_bytes,
            max_wait: Duration::from_millis(config.batch_max_wait_ms),
            done: Positions::new(),
            uncommitted: BTreeMap::new(),
        })
    }
}

#[async_trait::async_trait]
impl Source for KafkaSource {
    fn resume(&mut self, positions: Positions) {
        self.done = positions;
    }

    async fn next_batch(
        &mut self,
        idle_until: Option<Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Next, SourceError> {
        // Block for the first message, then fill until full or the wait runs out.
        let mut batch = BatchBuilder::new(self.max_messages);
        let idle = async {
            match idle_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = self.consumer.recv() => batch.add(&m?, &self.done, &self.topic_tenants, &mut self.normalizer),
            _ = idle => return Ok(Next::Idle),
            _ = shutdown.changed() => return Ok(Next::Stopped),
        }
        let deadline = Instant::now() + self.max_wait;
        while batch.messages < self.max_messages && batch.bytes < self.max_bytes {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(m) => batch.add(&m?, &self.done, &self.topic_tenants, &mut self.normalizer),
                Err(_) => break,
            }
        }
        Ok(Next::Batch(batch.finish()))
    }

    fn ack(&mut self, positions: Positions) {
        for (key, next) in positions {
            let done = self.done.entry(key.clone()).or_insert(0);
            *done = (*done).max(next);
            if let Some((topic, partition)) = split_key(&key) {
                let pending = self.uncommitted.entry((topic, partition)).or_insert(0);
                *pending = (*pending).max(next);
            }
        }
    }

    fn positions(&self) -> &Positions {
        &self.done
    }

    fn pending(&self) -> bool {
        !self.uncommitted.is_empty()
    }

    fn commit(&mut self) -> Result<bool, SourceError> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in std::mem::take(&mut self.uncommitted) {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        Ok(sentra_kafka::consumer::commit(&self.consumer, &tpl))
    }

    fn lossy_utf8(&self) -> u64 {
        self.normalizer.lossy_utf8()
    }
}

/// The key of a partition in [`Positions`].
fn key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The topic and partition of a [`Positions`] key (topic names cannot contain `/`).
fn split_key(key: &str) -> Option<(String, i32)> {
    let (topic, partition) = key.rsplit_once('/')?;
    Some((topic.to_owned(), partition.parse().ok()?))
}

/// A partition's part in a batch.
struct Partition {
    topic: String,
    partition: i32,
    /// The offset after the batch's last message from it.
    next: i64,
    /// The checkpointed offset: messages below it were handled before a restart.
    done: Option<i64>,
}

/// A batch being built from messages as they arrive: each is normalized at once, so none is copied.
struct BatchBuilder {
    columns: EventColumns,
    /// When each event was read, by row.
    read_us: Vec<i64>,
    quarantined: Vec<Quarantined>,
    partitions: Vec<Partition>,
    /// Messages received, skipped ones included.
    messages: usize,
    /// Payload bytes of the messages normalized into the batch.
    bytes: usize,
    /// Messages handled before a restart (stored and in the checkpointed state), not yet committed.
    skipped: usize,
    /// The `kafka:topic:partition:offset` of the message being normalized.
    source: String,
}

impl BatchBuilder {
    fn new(max_messages: usize) -> Self {
        Self {
            columns: EventColumns::with_capacity(max_messages.min(1 << 16)),
            read_us: Vec::with_capacity(max_messages.min(1 << 16)),
            quarantined: Vec::new(),
            partitions: Vec::new(),
            messages: 0,
            bytes: 0,
            skipped: 0,
            source: String::new(),
        }
    }

    /// Normalizes `m` into the batch (or its quarantine), unless `done` says the state already holds it.
    fn add(
        &mut self,
        m: &BorrowedMessage<'_>,
        done: &Positions,
        topic_tenants: &BTreeMap<String, String>,
        normalizer: &mut Normalizer,
    ) {
        use std::fmt::Write as _;
        self.messages += 1;
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        let at = match self
            .partitions
            .iter()
            .position(|p| p.partition == partition && p.topic == topic)
        {
            Some(at) => at,
            None => {
                self.partitions.push(Partition {
                    topic: topic.to_owned(),
                    partition,
                    next: 0,
                    done: done.get(&key(topic, partition)).copied(),
                });
                self.partitions.len() - 1
            }
        };
        let p = &mut self.partitions[at];
        p.next = p.next.max(offset + 1);
        if p.done.is_some_and(|done| offset < done) {
            self.skipped += 1;
            return;
        }
        self.bytes += m.payload_len();
        self.source.clear();
        let _ = write!(self.source, "kafka:{topic}:{partition}:{offset}");
        let header_tenant = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "tenant").and_then(|h| h.value));
        let ts = m.timestamp().to_millis();
        // Read now, not when the batch began: its first message may come after hours of quiet.
        let now_us = sentra_schemas::time::now_us();
        // A shipper may stamp the message with the event's own time, so the consumer's clock caps it; the
        // message time keeps the bound the same when the record is read again after a restart.
        let read_us = ts.map_or(now_us, |t| t.saturating_mul(1000).min(now_us));
        let input = Input {
            bytes: m.payload().unwrap_or_default(),
            source: &self.source,
            header_tenant,
            fallback_tenant: None,
            // A mapped topic is its tenant's, whatever the message says (`tenant_mismatch` otherwise).
            pinned_tenant: topic_tenants.get(topic).map(String::as_str),
            reference_us: ts.map_or(now_us, |t| t.saturating_mul(1000)),
            reference_is_event_time: ts.is_some(),
            read_us: Some(read_us),
        };
        match normalizer.normalize_into(&input, &mut self.columns) {
            Ok(_) => self.read_us.resize(self.columns.len(), read_us),
            Err(q) => self.quarantined.push(*q),
        }
    }

    fn finish(self) -> SourceBatch {
        SourceBatch {
            events: self.columns.into_batch(),
            read_us: self.read_us,
            quarantined: self.quarantined,
            records: self.messages,
            skipped: self.skipped,
            positions: self
                .partitions
                .into_iter()
                .map(|p| (key(&p.topic, p.partition), p.next))
                .collect(),
        }
    }
}
