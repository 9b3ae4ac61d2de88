//! Sentra's one Kafka module: every Kafka client in Sentra is configured and built here.
//!
//! - [`client`]: the librdkafka settings shared by every consumer, producer and admin client.
//! - [`consumer`]: the three ways Sentra reads a topic (as a group member; at a group's committed offsets
//!   without joining it; from the beginning), all committing only explicitly.
//! - [`producer`]: a producer whose sends complete when the broker acknowledges them.
//! - [`topics`]: creating the topics Sentra writes to.
//! - [`reachable`]: whether the brokers answer, for readiness.

#![warn(missing_docs)]

use std::collections::BTreeMap;

pub use rdkafka::config::ClientConfig;
pub use rdkafka::error::{KafkaError, KafkaResult};

pub mod consumer;
pub mod producer;
pub mod reachable;
pub mod topics;

pub use producer::Producer;

/// The librdkafka settings for `brokers` with the operator's `properties` (security, timeouts…) on top.
pub fn client(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// The largest message `client` will send: its `message.max.bytes`, or librdkafka's default of 1,000,000
/// bytes. Payload, key and headers together must fit, or the send fails however often it is retried.
pub fn message_max_bytes(client: &ClientConfig) -> usize {
    client
        .get("message.max.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Whether a failed send will fail again however often it is retried: the message is too large for the
/// client or the broker, the topic name is invalid, the client may not write to it, or the client itself is
/// misconfigured. Anything else (broker unreachable, leader moving, timeouts, a full queue) may succeed later.
pub fn is_permanent(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    match e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) => true,
        KafkaError::MessageProduction(code) => matches!(
            code,
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidRecord
                | C::InvalidTopic
                | C::InvalidArgument
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode as C;

    #[test]
    fn sizes_and_authorization_are_permanent_and_outages_are_not() {
        assert!(is_permanent(&KafkaError::MessageProduction(
            C::MessageSizeTooLarge
        )));
        assert!(is_permanent(&KafkaError::MessageProduction(
            C::TopicAuthorizationFailed
        )));
        assert!(!is_permanent(&KafkaError::MessageProduction(
            C::MessageTimedOut
        )));
        assert!(!is_permanent(&KafkaError::MessageProduction(
            C::AllBrokersDown
        )));
        assert!(!is_permanent(&KafkaError::Canceled));
    }

    #[test]
    fn the_message_limit_is_the_clients_own_or_librdkafkas_default() {
        let mut c = client("127.0.0.1:9092", &BTreeMap::new());
        assert_eq!(message_max_bytes(&c), 1_000_000);
        c.set("message.max.bytes", "2000000");
        assert_eq!(message_max_bytes(&c), 2_000_000);
    }
}
