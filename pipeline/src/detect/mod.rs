//! Detection: events in, signals out, in event time.
//!
//! Today one detection runs, [`ssh_brute_force`]: a tumbling event-time window per (tenant, source IP)
//! that closes when the tenant's watermark (max event time − allowed lateness) passes its end. The
//! declarative, DataFusion-executed catalog replaces this module's internals, not its interface.

pub mod ssh_brute_force;

use serde::Deserialize;

pub use ssh_brute_force::SshBruteForce;

/// Settings of the SSH brute-force detection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceConfig {
    /// Failed logins from one source IP within one window that make a signal.
    pub threshold: u64,
    /// Tumbling window length, seconds.
    pub window_secs: u64,
    /// How far behind the newest event of a tenant an event may arrive and still count, seconds.
    pub allowed_lateness_secs: u64,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            window_secs: 60,
            allowed_lateness_secs: 30,
        }
    }
}

impl BruteForceConfig {
    /// Problems with the values, in words (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.threshold == 0 {
            p.push("detection.ssh_brute_force.threshold must be at least 1".to_owned());
        }
        if self.window_secs == 0 || self.window_secs > 86_400 {
            p.push("detection.ssh_brute_force.window_secs must be between 1 and 86400".to_owned());
        }
        if self.allowed_lateness_secs > 86_400 {
            p.push(
                "detection.ssh_brute_force.allowed_lateness_secs must be at most 86400".to_owned(),
            );
        }
        p
    }
}

/// What happened to an event offered to a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Not relevant to the detection.
    Ignored,
    /// Counted in an open window.
    Counted,
    /// Relevant, but its window had already closed (beyond the allowed lateness): not counted.
    Late,
}
