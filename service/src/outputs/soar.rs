//! The SOAR delivery queue: signals bound for a destination are enqueued on the SOAR topic (delivery
//! awaited) before the batch is acknowledged; one consumer group per destination delivers them.

use sentra_kafka::Producer;
use sentra_schemas::Signal;
use sentra_soar::Destination;

use super::{Output, OutputError, Written};

/// The SOAR queue output.
pub struct SoarQueue {
    /// The producer, shared with the other Kafka outputs.
    pub producer: Producer,
    /// The SOAR topic.
    pub topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The destinations, which decide what is enqueued.
    pub destinations: Vec<Destination>,
    /// Settings to create the topics with.
    pub client: sentra_kafka::ClientConfig,
}

#[async_trait::async_trait]
impl Output for SoarQueue {
    fn name(&self) -> &'static str {
        "the SOAR queue"
    }

    async fn prepare(&self) -> Result<(), OutputError> {
        super::create_topics(&self.client, [self.topic.as_str(), self.dlq_topic.as_str()]).await
    }

    /// A repeated write is harmless: receivers deduplicate by `X-Sentra-Signal-Id`.
    async fn write_signals(&self, signals: &[Signal]) -> Result<Written, OutputError> {
        let queued =
            sentra_soar::queue::enqueue(&self.producer, &self.topic, signals, &self.destinations)
                .await
                .map_err(|e| super::kafka_failure(self.name().to_owned(), &e))?;
        Ok(Written::stored(queued))
    }
}
