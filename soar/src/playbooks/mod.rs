//! Playbooks (SENTreflex): YAML files that turn matching signals into runs of ordered steps (webhooks to a
//! SOAR, chat notifications, scripts from a script repository), gated by approvals where they say so.
//!
//! - [`definition`]: the file format, matching and approval rules.
//! - [`run`]: the run state machine and the events that record runs on Kafka.
//! - [`steps`]: executing a step.
//! - [`engine`]: the engine (follows signals and decisions) and [`engine::decide`] for approvals.

pub mod definition;
pub mod engine;
pub mod run;
pub mod steps;
