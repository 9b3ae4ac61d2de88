//! Sentra's one Kafka module: every Kafka client in Sentra is configured and built here.
//!
//! - [`client`]: the librdkafka settings shared by every consumer, producer and admin client.
//! - [`consumer`]: the three ways Sentra reads a topic (as a group member; at a group's committed offsets
//!   without joining it; from the beginning), all committing only explicitly.
//! - [`producer`]: a producer whose sends complete when the broker acknowledges them.
//! - [`topics`]: creating the topics Sentra writes to.

#![warn(missing_docs)]

use std::collections::BTreeMap;

pub use rdkafka::config::ClientConfig;
pub use rdkafka::error::{KafkaError, KafkaResult};

pub mod consumer;
pub mod producer;
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
