//! Detection: events in, signals out, in event time.
//!
//! Detections are data ([`definition::Detection`], TOML files); the built-in catalog in `detections/` uses
//! the same format users do ([`catalog`]). The [`engine::Engine`] plans each one with DataFusion once and
//! keeps keyed window state; [`risk`] scores and words the signals.

mod aggregates;
pub mod catalog;
mod clock;
pub mod definition;
pub mod engine;
pub mod overrides;
mod predicates;
pub mod risk;
mod sharing;
pub mod shed;
mod state;
mod table;

pub use definition::Detection;
pub use engine::{BatchOutcome, Engine, EngineConfig, EngineError, EngineState};
pub use overrides::Overrides;
pub use shed::{ShedTotals, DEGRADED};

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;
