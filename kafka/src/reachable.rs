//! Whether the brokers answer: a client that only asks for the cluster's metadata, for readiness checks.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};

/// A metadata-only client (it joins no group and reads nothing). Clones share it.
#[derive(Clone)]
pub struct Brokers(Arc<BaseConsumer>);

impl Brokers {
    /// A client for `client`'s brokers.
    pub fn new(client: &ClientConfig) -> KafkaResult<Self> {
        Ok(Self(Arc::new(client.create()?)))
    }

    /// Ok when a broker sends the cluster's metadata within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> KafkaResult<()> {
        let c = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || c.fetch_metadata(None, timeout).map(|_| ()))
            .await
            .unwrap_or(Err(KafkaError::Canceled))
    }
}
