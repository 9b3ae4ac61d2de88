//! Sentra hands high-risk signals to responders: SOAR platforms (Tines, Shuffle) and chat.
//!
//! - [`envelope`]: the webhook contract (`schemas/json/soar_envelope.schema.json`) and the Slack text.
//! - [`signing`]: HMAC-SHA256 signatures with a timestamp, so receivers can verify and reject replays.
//! - [`config`]: destinations, per-tenant routing, retry budget, rate limits (`[soar]` in `sentra.toml`).
//! - [`delivery`]: one signal to one destination: retries with exponential backoff and jitter, `Retry-After`,
//!   a rate limit per destination (`governor`).
//! - [`audit`]: the tamper-evident audit trail (events on Kafka, chained per tenant into ClickHouse).
//! - [`anchor`]: signed chain heads on a Kafka topic of their own, which show truncation and rewriting.
//! - [`playbooks`]: playbook files, runs with approval gates, the engine.
//! - [`queue`]: durability through Kafka: `sentra run` enqueues signals on a topic before committing its
//!   input; one consumer group per destination delivers them and commits only after delivery or after
//!   moving the signal to the dead-letter topic, which `sentra soar dlq list|replay` inspects and re-sends.

#![warn(missing_docs)]

pub mod anchor;
pub mod audit;
pub mod config;
pub mod delivery;
pub mod envelope;
pub mod playbooks;
pub mod queue;
pub mod signing;

pub use config::{Destination, DestinationKind, SoarConfig};
pub use delivery::{Deliverer, Outcome};

#[cfg(test)]
mod testing {
    use sentra_schemas::Signal;

    /// A plain high-risk signal of tenant `acme`.
    pub fn signal() -> Signal {
        Signal {
            id: "abcdef012345".into(),
            signal: "ssh_brute_force".into(),
            tenant: sentra_schemas::TenantId::new("acme").unwrap(),
            hosts: vec![],
            user: Some("root".into()),
            ip: Some("203.0.113.7".into()),
            window_start: 0,
            window_end: 60_000_000,
            count: 6,
            risk_score: 0.7,
            severity: sentra_schemas::Severity::High,
            risk_factors: vec![],
            mitre: vec![],
            compliance: vec![],
            intent: String::new(),
            narrative: String::new(),
            recommendation: String::new(),
            evidence: vec![],
            suppressed: false,
            override_applied: None,
        }
    }
}
