//! Sentra's engine: [`normalize`] turns raw records (syslog lines, JSON, journald and auditd records) into
//! ECS events in Arrow batches (or quarantines them with a reason), and [`detect`] runs the windowed
//! detections over those batches and turns them into signals. Pure computation: no runtime, no I/O beyond
//! reading detection files; the service crate drives it from files and Kafka and stores what it returns.

#![warn(missing_docs)]

pub mod detect;
pub mod normalize;
