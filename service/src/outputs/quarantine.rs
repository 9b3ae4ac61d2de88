//! The quarantine topic: each quarantined record's original bytes, with why and where from in headers, so
//! an operator can inspect, fix and re-send it.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use sentra_kafka::Producer;
use sentra_schemas::Quarantined;

use super::{Output, OutputError, Written};

/// The quarantine topic output.
pub struct QuarantineTopic {
    /// The producer, shared with the other Kafka outputs.
    pub producer: Producer,
    /// The topic.
    pub topic: String,
    /// Settings to create the topic with.
    pub client: sentra_kafka::ClientConfig,
}

#[async_trait::async_trait]
impl Output for QuarantineTopic {
    fn name(&self) -> &'static str {
        "the quarantine topic"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        super::create_topics(&self.client, [self.topic.as_str()]).await
    }

    /// Waits for the broker to acknowledge every record. Any producer failure is transient: the records
    /// are still ours until delivered, and a retried write may send some of them twice (the headers name
    /// each one's source offset).
    async fn write_quarantine(&self, items: &[Quarantined]) -> Result<Written, OutputError> {
        for q in items {
            // `kafka:<topic>:<partition>:<offset>`; topics may contain ':' only in theory, so split from the
            // right.
            let mut parts = q.source.rsplitn(3, ':');
            let offset = parts.next().unwrap_or_default();
            let partition = parts.next().unwrap_or_default();
            let source_topic = parts
                .next()
                .unwrap_or_default()
                .strip_prefix("kafka:")
                .unwrap_or_default();
            let mut headers = OwnedHeaders::new();
            for (key, value) in [
                ("sentra.reason", q.reason.as_str()),
                ("sentra.detail", q.detail.as_str()),
                ("sentra.source_topic", source_topic),
                ("sentra.source_partition", partition),
                ("sentra.source_offset", offset),
            ]
            .into_iter()
            .chain(q.tenant.as_deref().map(|t| ("sentra.tenant", t)))
            {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(&q.original)
                .headers(headers);
            self.producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|e| {
                    OutputError::Transient(format!("{} is unavailable: {e}", self.name()))
                })?;
        }
        Ok(Written::stored(items.len()))
    }
}
