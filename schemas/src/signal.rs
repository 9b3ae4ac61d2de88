use serde::{Deserialize, Serialize};

use crate::TenantId;

/// Severity band of a risk score: LOW < 0.3 ≤ MEDIUM < 0.5 ≤ HIGH < 0.8 ≤ CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// risk < 0.3
    Low,
    /// 0.3 ≤ risk < 0.5
    Medium,
    /// 0.5 ≤ risk < 0.8
    High,
    /// risk ≥ 0.8
    Critical,
}

impl Severity {
    /// The band a risk score in [0, 1] falls into.
    pub fn from_risk(risk: f64) -> Self {
        if risk >= 0.8 {
            Severity::Critical
        } else if risk >= 0.5 {
            Severity::High
        } else if risk >= 0.3 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// The upper-case name (`LOW`, `MEDIUM`, `HIGH`, `CRITICAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One named contribution to a signal's risk score, so every score can be explained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFactor {
    /// Factor name, e.g. `base`, `intensity`, `privileged_target`.
    pub name: String,
    /// How much this factor added to the score.
    pub contribution: f64,
    /// Why, in plain words.
    pub detail: String,
}

/// A MITRE ATT&CK technique with its tactic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreTechnique {
    /// Technique id, e.g. `T1110.001`.
    pub technique: String,
    /// Tactic name, e.g. `Credential Access`.
    pub tactic: String,
}

/// A detection result: calm, explainable, with a stable id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// 12 hex chars: hash of tenant + detection + entity + window start. Same input → same id.
    pub id: String,
    /// Detection name, e.g. `ssh_brute_force`.
    pub signal: String,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Hosts the evidence came from, sorted.
    pub hosts: Vec<String>,
    /// The user concerned, when the detection has one.
    pub user: Option<String>,
    /// The source IP concerned, when the detection has one.
    pub ip: Option<String>,
    /// Window start, epoch microseconds (RFC 3339 UTC in JSON).
    #[serde(with = "crate::time::rfc3339_us")]
    pub window_start: i64,
    /// Window end (exclusive), epoch microseconds (RFC 3339 UTC in JSON).
    #[serde(with = "crate::time::rfc3339_us")]
    pub window_end: i64,
    /// Number of matching events in the window.
    pub count: u64,
    /// Risk in [0, 1], rounded to 3 decimals.
    pub risk_score: f64,
    /// Severity band of `risk_score`.
    pub severity: Severity,
    /// Every factor and its contribution; they sum to `risk_score` (before clamping to 1).
    pub risk_factors: Vec<RiskFactor>,
    /// MITRE ATT&CK techniques.
    pub mitre: Vec<MitreTechnique>,
    /// SOC 2 / ISO 27001 controls this evidence supports, e.g. `SOC2:CC6.1`, `ISO27001:A.8.5`.
    pub compliance: Vec<String>,
    /// Intent class: Maintenance, Identity Management, Credential Access, Privilege Escalation.
    pub intent: String,
    /// A calm, plain-language account of what was seen.
    pub narrative: String,
    /// What to do next.
    pub recommendation: String,
    /// Sample evidence event ids (first few, in event order).
    pub evidence: Vec<String>,
    /// Set by an analyst override: kept and stored, but not routed to responders.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
    /// The override that changed this signal, if any.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_applied: Option<AppliedOverride>,
}

/// Which analyst override touched a signal, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedOverride {
    /// The override's id.
    pub id: String,
    /// `suppress` or `downgrade`.
    pub action: String,
    /// The override's reason.
    pub reason: String,
}
