//! The ways Sentra reads a topic. Every consumer commits only explicitly (auto-commit and auto offset
//! store are off), so an offset is committed after what it covers is stored, never before.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

/// How long metadata and committed-offset requests may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings every Sentra consumer shares: `group`, explicit commits only, no end-of-partition events.
fn manual(client: &ClientConfig, group: &str) -> ClientConfig {
    let mut c = client.clone();
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    c
}

/// A member of consumer group `group` subscribed to `topics`, starting from the earliest offset where the
/// group has none.
pub fn group(client: &ClientConfig, group: &str, topics: &[&str]) -> KafkaResult<StreamConsumer> {
    let c: StreamConsumer = manual(client, group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(topics)?;
    Ok(c)
}

/// A consumer of every partition of `topic`, positioned at `group`'s committed offsets (the beginning where
/// none), without joining the group: it needs no rebalance and cannot take partitions from any member.
pub fn at_committed(
    client: &ClientConfig,
    group: &str,
    topic: &str,
) -> KafkaResult<StreamConsumer> {
    let c: StreamConsumer = manual(client, group).create()?;
    let committed =
        c.committed_offsets(partitions(&c, topic, Offset::Invalid)?, METADATA_TIMEOUT)?;
    let mut start = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        start.add_partition_offset(topic, e.partition(), offset)?;
    }
    c.assign(&start)?;
    Ok(c)
}

/// A consumer of every partition of `topic` from its beginning, outside any group (`group` only names the
/// client to the broker).
pub fn from_beginning(
    client: &ClientConfig,
    group: &str,
    topic: &str,
) -> KafkaResult<StreamConsumer> {
    let c: StreamConsumer = manual(client, group).create()?;
    c.assign(&partitions(&c, topic, Offset::Beginning)?)?;
    Ok(c)
}

/// Every partition of `topic`, each at `offset`.
fn partitions(c: &StreamConsumer, topic: &str, offset: Offset) -> KafkaResult<TopicPartitionList> {
    let metadata = c.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    let mut all = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            all.add_partition_offset(topic, p.id(), offset)?;
        }
    }
    Ok(all)
}

/// Commits `offsets`; true when the broker took them. A failed commit is logged, not returned: after a
/// rebalance or a session the broker expired (an unreachable or frozen broker), the partitions may belong to
/// another member, which reads on from the last commit, and every Sentra consumer's work may be repeated
/// (stores and receivers deduplicate by id).
pub fn commit(c: &StreamConsumer, offsets: &TopicPartitionList) -> bool {
    match c.commit(offsets, CommitMode::Sync) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "offset commit failed; what followed the last commit may be read again (its handling is idempotent)");
            false
        }
    }
}

/// Commits the offsets after each of `messages` ([`commit`]).
pub fn commit_after<'a, M: rdkafka::Message + 'a>(
    c: &StreamConsumer,
    messages: impl IntoIterator<Item = &'a M>,
) -> bool {
    let mut offsets = TopicPartitionList::new();
    for m in messages {
        let next = Offset::Offset(m.offset() + 1);
        if offsets
            .add_partition_offset(m.topic(), m.partition(), next)
            .is_err()
        {
            return false;
        }
    }
    commit(c, &offsets)
}
