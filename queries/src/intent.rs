//! The typed query intent (IR) every question becomes, whoever planned it. Compilers turn it into a store's
//! query; nothing from the question reaches a query except as a bound parameter.

use serde::{Deserialize, Serialize};

/// What the analyst wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    /// How many.
    Count,
    /// The most frequent values of `group_by`.
    TopN,
    /// Counts per hour or day.
    Trend,
    /// The matching records themselves.
    List,
    /// One signal, explained.
    ExplainSignal,
    /// An overview of a period: counts by kind and the signals raised.
    Summarize,
}

/// Which records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// Normalized events.
    Events,
    /// Signals.
    Signals,
}

/// A grouping dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// Source IP.
    Ip,
    /// User name.
    User,
    /// Host.
    Host,
    /// Detection name (signals) .
    Signal,
    /// Severity (signals).
    Severity,
    /// Outcome (events).
    Outcome,
    /// Action (events).
    Action,
    /// Hour buckets (trends).
    Hour,
    /// Day buckets (trends).
    Day,
}

/// Filters; empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// `[from, to)` in epoch microseconds.
    pub time: Option<(i64, i64)>,
    /// Exact IPs or CIDR ranges.
    pub ips: Vec<String>,
    /// User names (acting or target).
    pub users: Vec<String>,
    /// Hosts.
    pub hosts: Vec<String>,
    /// Detection names.
    pub signals: Vec<String>,
    /// Severities (`LOW` … `CRITICAL`).
    pub severities: Vec<String>,
    /// MITRE technique ids (a technique matches its sub-techniques).
    pub mitre: Vec<String>,
    /// `success` / `failure`.
    pub outcome: Option<String>,
    /// ECS category.
    pub category: Option<String>,
    /// Actions.
    pub actions: Vec<String>,
    /// Process names (`sudo`, `su`, `sshd`).
    pub processes: Vec<String>,
    /// Signal intent class.
    pub intent: Option<String>,
}

/// A question, understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// What to compute.
    pub what: What,
    /// Over which records.
    pub subject: Subject,
    /// Which of them.
    #[serde(default)]
    pub filters: Filters,
    /// Grouping for top-N and trends.
    #[serde(default)]
    pub group_by: Option<Dim>,
    /// Most rows returned.
    #[serde(default = "ten")]
    pub limit: usize,
    /// The signal to explain.
    #[serde(default)]
    pub signal_id: Option<String>,
    /// How the question was read, for the answer's transparency (e.g. "failed logins" → outcome failure).
    #[serde(default)]
    pub notes: Vec<String>,
    /// What in the question was not understood, and what the answer does instead (e.g. "I answered for all
    /// users: I have not seen a user \"bob\" in this tenant's data"). Empty when everything was understood.
    #[serde(default)]
    pub unclear: Vec<String>,
}

fn ten() -> usize {
    10
}

/// Most rows any answer returns.
pub const MAX_ROWS: usize = 1000;
/// Longest time range a question may cover (longer ones are cut to the most recent part).
pub const MAX_RANGE_US: i64 = 400 * 86_400 * 1_000_000;
