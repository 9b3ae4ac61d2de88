//! Detections shedding state. Each detection of a tenant holds at most `max_entities_per_detection`
//! entities; past that its least active ones (fewest events in their open windows, then least recently
//! merged into) are dropped to make room, so a flood of distinct values (a spray of user names) replaces its
//! own oldest members in that one detection of that one tenant, rather than every detection refusing its
//! newcomers. What is dropped is counted per tenant and detection, logged once per period, and
//! reported by a low-risk `detection_degraded` signal per tenant, detection and hour of event time, which
//! takes the path of every other signal.

use std::collections::BTreeMap;

use sentra_schemas::time::format_rfc3339_us;
use sentra_schemas::{hex_digest, RiskFactor, Severity, Signal, TenantId};
use serde::{Deserialize, Serialize};

/// The name of the signal a detection shedding state raises.
pub const DEGRADED: &str = "detection_degraded";
/// Its risk: low, since it speaks of Sentra's own coverage rather than of an attack.
const DEGRADED_RISK: f64 = 0.15;
/// Shedding is reported per this much event time.
const PERIOD_US: i64 = 3_600_000_000;

/// Entities one detection of one tenant shed in one period, as checkpoints keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shed {
    /// The tenant.
    pub tenant: String,
    /// The detection.
    pub detection: String,
    /// The period's start, epoch µs.
    pub period: i64,
    /// Entities dropped in it.
    pub entities: u64,
}

/// Per (tenant, detection), a count.
pub type ShedTotals = BTreeMap<String, BTreeMap<String, u64>>;

/// Every tenant's shedding: totals, and periods not yet reported.
#[derive(Debug, Default)]
pub(super) struct Shedding {
    totals: ShedTotals,
    /// Entities shed per (tenant, detection, period start), not yet reported.
    open: BTreeMap<(String, String, i64), u64>,
}

impl Shedding {
    /// Counts `n` entities that `detection` of `tenant` dropped, its newest activity being at `latest` (µs).
    /// Returns whether they open a period (to be logged once).
    pub fn count(&mut self, tenant: &str, detection: &str, latest: i64, n: u64) -> bool {
        let total = self.totals.entry(tenant.to_owned()).or_default();
        *total.entry(detection.to_owned()).or_default() += n;
        let period = latest.saturating_sub(latest.rem_euclid(PERIOD_US));
        let key = (tenant.to_owned(), detection.to_owned(), period);
        let open = self.open.entry(key).or_default();
        *open += n;
        *open == n
    }

    /// Takes the periods whose end `ended(tenant, end)` says is past.
    pub fn due(&mut self, ended: impl Fn(&str, i64) -> bool) -> Vec<Shed> {
        let due: Vec<(String, String, i64)> = (self.open.keys())
            .filter(|(tenant, _, period)| ended(tenant, period.saturating_add(PERIOD_US)))
            .cloned()
            .collect();
        due.into_iter()
            .map(|key| {
                let entities = self.open.remove(&key).unwrap_or_default();
                let (tenant, detection, period) = key;
                Shed {
                    tenant,
                    detection,
                    period,
                    entities,
                }
            })
            .collect()
    }

    /// Entities shed so far per tenant and detection.
    pub fn totals(&self) -> &ShedTotals {
        &self.totals
    }

    /// The totals and the periods not yet reported, for checkpoints.
    pub fn save(&self) -> (ShedTotals, Vec<Shed>) {
        let open = (self.open.iter())
            .map(|((tenant, detection, period), &entities)| Shed {
                tenant: tenant.clone(),
                detection: detection.clone(),
                period: *period,
                entities,
            })
            .collect();
        (self.totals.clone(), open)
    }

    /// Back from [`Shedding::save`]'s form.
    pub fn restore(&mut self, totals: ShedTotals, open: Vec<Shed>) {
        self.totals = totals;
        self.open = (open.into_iter())
            .map(|s| ((s.tenant, s.detection, s.period), s.entities))
            .collect();
    }
}

/// The `detection_degraded` signal of `shed`, for a detection grouping by `keys` and holding at most `cap`
/// entities: a stable id per tenant, detection and period, so a period reported again replaces itself.
pub(super) fn degraded_signal(shed: &Shed, keys: &[String], cap: usize) -> Signal {
    let (tenant, name, start) = (&shed.tenant, &shed.detection, shed.period);
    let end = start.saturating_add(PERIOD_US);
    let id = hex_digest(
        &[
            tenant.as_bytes(),
            DEGRADED.as_bytes(),
            name.as_bytes(),
            &start.to_le_bytes(),
        ],
        12,
    );
    let keys = keys.join(", ");
    let (from, to) = (format_rfc3339_us(start), format_rfc3339_us(end));
    let (date, from, to) = (&from[..10], &from[11..16], &to[11..16]);
    let n = shed.entities;
    let narrative = format!(
        "Detection {name} is shedding state for tenant {tenant}: on {date} between {from} and {to} UTC it \
         was asked to follow at least {} distinct entities ({keys}) at once, more than its limit of {cap}, so \
         the {n} least active were dropped. Activity spread over that many values, such as a spray of user \
         names, may go unnoticed by this detection meanwhile; other detections and tenants keep their own state.",
        cap as u64 + n
    );
    let recommendation = format!(
        "Look for a flood of distinct {keys} values in tenant {tenant}'s events in this hour. If the volume is \
         legitimate, raise detection.max_entities_per_detection."
    );
    Signal {
        id,
        signal: DEGRADED.to_owned(),
        tenant: TenantId::new(tenant)
            .unwrap_or_else(|_| TenantId::new("invalid").expect("literal")),
        hosts: Vec::new(),
        user: None,
        ip: None,
        window_start: start,
        window_end: end,
        count: n,
        risk_score: DEGRADED_RISK,
        severity: Severity::from_risk(DEGRADED_RISK),
        risk_factors: vec![RiskFactor {
            name: "base".into(),
            contribution: DEGRADED_RISK,
            detail: format!("{name} dropped {n} entities of tenant {tenant} at its limit of {cap}"),
        }],
        mitre: Vec::new(),
        compliance: Vec::new(),
        intent: "Maintenance".into(),
        narrative,
        recommendation,
        evidence: Vec::new(),
        suppressed: false,
        override_applied: None,
    }
}
