//! Sentra's data flow, stage by stage: sources hand over raw records, [`normalize`] turns them into ECS
//! events (or quarantines them), [`detect`] turns events into signals, and the drivers ([`replay`] for files,
//! [`run`] for Kafka) wire sources to sinks with the delivery guarantees described in docs/ARCHITECTURE.md;
//! [`respond`] runs playbooks, approvals and the audit trail's checks.

pub mod api;
pub mod config;
pub mod detect;
pub mod normalize;
pub mod replay;
pub mod respond;
pub mod run;
