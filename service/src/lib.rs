//! Sentra as a running service: everything around the engine (`sentra-pipeline`) that reads, stores,
//! serves and responds.
//!
//! - [`config`]: `sentra.toml` and its `SENTRA_<SECTION>_<KEY>` overrides, checked as a whole.
//! - [`sources`]: where batches come from (Kafka today), and how their positions are acknowledged.
//! - [`outputs`]: the output contract and the stores and queues that implement it.
//! - [`run`]: `sentra run`: source → engine → outputs → acknowledgements → checkpoint and commit.
//! - [`replay`]: `sentra replay`: files merged by event time through the engine into the embedded store.
//! - [`api`]: the HTTP API (questions, signals, playbook runs, liveness and readiness).
//! - [`health`]: readiness (workers alive, dependencies answering) and the supervisor that restarts workers.
//! - [`respond`]: the responders' wiring: playbook engine, approvals, audit verification and bundles.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod health;
pub mod outputs;
pub mod replay;
pub mod respond;
pub mod run;
pub mod sources;
