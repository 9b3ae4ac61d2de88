//! Analyst overrides (`overrides.json`): suppress or downgrade signals by signal id, detection, tenant, host,
//! user or source CIDR, optionally only inside maintenance windows, always with a reason. Overridden signals
//! are still emitted and stored, marked with the override that applied: nothing is deleted.
//!
//! ```json
//! { "overrides": [
//!   { "id": "scanner", "action": "suppress", "reason": "Weekly authorised vulnerability scan (CHG-1042)",
//!     "match": { "detection": "ssh_brute_force", "tenant": "acme", "source_cidr": "10.20.0.0/16" },
//!     "maintenance": [{ "days": ["sat"], "from": "02:00", "to": "04:00" }] },
//!   { "id": "lab", "action": "downgrade", "severity": "LOW", "reason": "Lab hosts, no production data",
//!     "match": { "host": "lab-1" }, "expires": "2026-12-31T00:00:00Z" }
//! ] }
//! ```
//!
//! The first matching override (in file order) applies. Maintenance windows and `time_windows` are checked
//! against the signal's window start (UTC); `expires` ends an override for signals starting after it.

use std::net::IpAddr;

use sentra_schemas::{AppliedOverride, RiskFactor, Severity, Signal};
use serde::Deserialize;

/// The overrides file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// In priority order.
    pub overrides: Vec<Override>,
}

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Mark the signal suppressed (kept and stored, not routed to responders).
    Suppress,
    /// Lower the signal's severity (and cap its risk to that band).
    Downgrade,
}

/// One override.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Stable identifier, recorded on the signals it touches.
    pub id: String,
    /// Suppress or downgrade.
    pub action: Action,
    /// Target severity of a downgrade.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Why (required, non-empty): it travels with every signal this override touches.
    pub reason: String,
    /// What it applies to; every given field must match.
    #[serde(rename = "match", default)]
    pub matcher: Match,
    /// Absolute windows (UTC) in which it applies.
    #[serde(default)]
    pub time_windows: Vec<TimeWindow>,
    /// Recurring weekly maintenance windows (UTC) in which it applies.
    #[serde(default)]
    pub maintenance: Vec<Maintenance>,
    /// No longer applies to signals starting after this time.
    #[serde(default, with = "opt_rfc3339")]
    pub expires: Option<i64>,
}

/// Signal fields an override matches on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Exact signal id.
    pub signal_id: Option<String>,
    /// Detection name.
    pub detection: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// One of the signal's hosts.
    pub host: Option<String>,
    /// The signal's user.
    pub user: Option<String>,
    /// The signal's source IP within this CIDR (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
    pub source_cidr: Option<String>,
}

/// `[start, end)` in UTC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// Start.
    #[serde(with = "sentra_schemas::time::rfc3339_us")]
    pub start: i64,
    /// End (exclusive).
    #[serde(with = "sentra_schemas::time::rfc3339_us")]
    pub end: i64,
}

/// A weekly window: on these days, from `from` to `to` (UTC, `hh:mm`; `to` may be past midnight).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Days it starts on: `mon` … `sun`.
    pub days: Vec<String>,
    /// Start time `hh:mm`.
    pub from: String,
    /// End time `hh:mm` (before `from` means the next day).
    pub to: String,
}

mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => match sentra_schemas::time::parse_iso8601_prefix(s.as_bytes()) {
                Some((us, n)) if n == s.len() => Ok(Some(us)),
                _ => Err(serde::de::Error::custom(format!(
                    "not an RFC 3339 timestamp: {s:?}"
                ))),
            },
        }
    }
}

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some((h * 60 + m) * 60)
}

/// Parses `a.b.c.d/n`, `x::/n` or a bare address.
fn parse_cidr(s: &str) -> Option<(IpAddr, u32)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, len.parse::<u32>().ok()?),
        None => {
            let ip = s.parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (Ok(ip), Some((net, len))) = (ip.parse::<IpAddr>(), parse_cidr(cidr)) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl Maintenance {
    fn contains(&self, us: i64) -> bool {
        let (Some(from), Some(to)) = (hhmm(&self.from), hhmm(&self.to)) else {
            return false;
        };
        let secs = us.div_euclid(1_000_000);
        let day = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let weekday = |d: i64| DAYS[(d + 4).rem_euclid(7) as usize];
        let starts_on = |d: i64| self.days.iter().any(|x| x.eq_ignore_ascii_case(weekday(d)));
        if from < to {
            starts_on(day) && sod >= from && sod < to
        } else {
            // Crosses midnight: the evening part today, or the morning part of a window that started yesterday.
            (starts_on(day) && sod >= from) || (starts_on(day - 1) && sod < to)
        }
    }
}

impl Override {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let who = format!("override {:?}", self.id);
        if self.id.trim().is_empty() {
            p.push("an override has an empty id".to_owned());
        }
        if self.reason.trim().is_empty() {
            p.push(format!("{who}: reason is required"));
        }
        match (self.action, self.severity) {
            (Action::Downgrade, None) => p.push(format!("{who}: a downgrade needs a severity")),
            (Action::Suppress, Some(_)) => p.push(format!("{who}: suppress takes no severity")),
            _ => {}
        }
        let m = &self.matcher;
        if m.signal_id.is_none()
            && m.detection.is_none()
            && m.tenant.is_none()
            && m.host.is_none()
            && m.user.is_none()
            && m.source_cidr.is_none()
        {
            p.push(format!(
                "{who}: match must name at least one field (an override may not match everything)"
            ));
        }
        if let Some(c) = &m.source_cidr {
            if parse_cidr(c).is_none() {
                p.push(format!(
                    "{who}: source_cidr {c:?} is not an address or CIDR"
                ));
            }
        }
        for w in &self.maintenance {
            if hhmm(&w.from).is_none() || hhmm(&w.to).is_none() {
                p.push(format!("{who}: maintenance times must be hh:mm"));
            }
            if w.days.is_empty()
                || w.days
                    .iter()
                    .any(|d| !DAYS.iter().any(|x| x.eq_ignore_ascii_case(d)))
            {
                p.push(format!("{who}: maintenance days must be from {DAYS:?}"));
            }
        }
        p
    }

    fn matches(&self, s: &Signal) -> bool {
        let m = &self.matcher;
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        eq(&m.signal_id, Some(&s.id))
            && eq(&m.detection, Some(&s.signal))
            && eq(&m.tenant, Some(s.tenant.as_str()))
            && m.host
                .as_deref()
                .is_none_or(|h| s.hosts.iter().any(|x| x == h))
            && eq(&m.user, s.user.as_deref())
            && m.source_cidr
                .as_deref()
                .is_none_or(|c| s.ip.as_deref().is_some_and(|ip| in_cidr(ip, c)))
            && self.expires.is_none_or(|e| s.window_start < e)
            && (self.time_windows.is_empty()
                || self
                    .time_windows
                    .iter()
                    .any(|w| s.window_start >= w.start && s.window_start < w.end))
            && (self.maintenance.is_empty()
                || self.maintenance.iter().any(|w| w.contains(s.window_start)))
    }
}

impl Overrides {
    /// Parses and validates an overrides file; every problem is reported.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, String> {
        let o: Overrides = serde_json::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let problems: Vec<String> = o.overrides.iter().flat_map(Override::problems).collect();
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(format!("{origin}: {}", problems.join("; ")))
        }
    }

    /// Reads an overrides file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Applies the first matching override to `s`, if any.
    pub fn apply(&self, s: &mut Signal) {
        let Some(o) = self.overrides.iter().find(|o| o.matches(s)) else {
            return;
        };
        match (o.action, o.severity) {
            (Action::Suppress, _) => s.suppressed = true,
            (Action::Downgrade, Some(to)) if to < s.severity => {
                // Cap the score just under the target band's ceiling and say so in the factors.
                let ceiling = match to {
                    Severity::Low => 0.299,
                    Severity::Medium => 0.499,
                    Severity::High => 0.799,
                    Severity::Critical => 1.0,
                };
                let capped = s.risk_score.min(ceiling);
                s.risk_factors.push(RiskFactor {
                    name: "override".into(),
                    contribution: ((capped - s.risk_score) * 1000.0).round() / 1000.0,
                    detail: format!(
                        "downgraded to {} by override {}: {}",
                        to.as_str(),
                        o.id,
                        o.reason
                    ),
                });
                s.risk_score = capped;
                s.severity = to;
            }
            (Action::Downgrade, _) => {}
        }
        s.override_applied = Some(AppliedOverride {
            id: o.id.clone(),
            action: match o.action {
                Action::Suppress => "suppress".into(),
                Action::Downgrade => "downgrade".into(),
            },
            reason: o.reason.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentra_schemas::{MitreTechnique, TenantId};

    const SAT_0300: i64 = 1_773_457_200_000_000; // 2026-03-14T03:00:00Z, a Saturday

    fn signal() -> Signal {
        Signal {
            id: "abcdef012345".into(),
            signal: "ssh_brute_force".into(),
            tenant: TenantId::new("acme").unwrap(),
            hosts: vec!["bastion-1".into()],
            user: Some("root".into()),
            ip: Some("10.20.3.4".into()),
            window_start: SAT_0300,
            window_end: SAT_0300 + 60_000_000,
            count: 9,
            risk_score: 0.7,
            severity: Severity::High,
            risk_factors: vec![RiskFactor {
                name: "base".into(),
                contribution: 0.7,
                detail: String::new(),
            }],
            mitre: vec![MitreTechnique {
                technique: "T1110.001".into(),
                tactic: "Credential Access".into(),
            }],
            compliance: vec![],
            intent: "Credential Access".into(),
            narrative: String::new(),
            recommendation: String::new(),
            evidence: vec![],
            suppressed: false,
            override_applied: None,
        }
    }

    fn overrides(json: &str) -> Overrides {
        Overrides::from_json(json, "test").unwrap()
    }

    #[test]
    fn suppress_in_maintenance_window_by_cidr() {
        let o = overrides(
            r#"{"overrides":[{"id":"scan","action":"suppress","reason":"authorised scan",
                "match":{"detection":"ssh_brute_force","source_cidr":"10.20.0.0/16"},
                "maintenance":[{"days":["sat"],"from":"02:00","to":"04:00"}]}]}"#,
        );
        let mut s = signal();
        o.apply(&mut s);
        assert!(s.suppressed);
        assert_eq!(
            s.override_applied.as_ref().unwrap().reason,
            "authorised scan"
        );
        assert_eq!(
            s.severity,
            Severity::High,
            "suppression keeps the assessment"
        );
        let mut outside = signal();
        outside.window_start += 2 * 3_600_000_000; // 05:00
        o.apply(&mut outside);
        assert!(!outside.suppressed && outside.override_applied.is_none());
        let mut other_net = signal();
        other_net.ip = Some("10.21.0.1".into());
        o.apply(&mut other_net);
        assert!(!other_net.suppressed);
    }

    #[test]
    fn downgrade_caps_risk_and_explains_it() {
        let o = overrides(
            r#"{"overrides":[{"id":"lab","action":"downgrade","severity":"LOW","reason":"lab","match":{"host":"bastion-1"}}]}"#,
        );
        let mut s = signal();
        o.apply(&mut s);
        assert_eq!((s.severity, s.risk_score), (Severity::Low, 0.299));
        let sum: f64 = s.risk_factors.iter().map(|f| f.contribution).sum();
        assert!((sum - s.risk_score).abs() < 1e-9);
        assert!(!s.suppressed);
    }

    #[test]
    fn expiry_windows_and_first_match_wins() {
        let o = overrides(
            r#"{"overrides":[
                {"id":"old","action":"suppress","reason":"r","match":{"tenant":"acme"},"expires":"2026-01-01T00:00:00Z"},
                {"id":"win","action":"suppress","reason":"r","match":{"user":"root"},
                 "time_windows":[{"start":"2026-03-14T00:00:00Z","end":"2026-03-15T00:00:00Z"}]},
                {"id":"late","action":"downgrade","severity":"MEDIUM","reason":"r","match":{"signal_id":"abcdef012345"}}]}"#,
        );
        let mut s = signal();
        o.apply(&mut s);
        assert_eq!(s.override_applied.unwrap().id, "win");
    }

    #[test]
    fn invalid_files_are_explained() {
        for (json, needle) in [
            (
                r#"{"overrides":[{"id":"a","action":"suppress","reason":"","match":{"tenant":"x"}}]}"#,
                "reason is required",
            ),
            (
                r#"{"overrides":[{"id":"a","action":"suppress","reason":"r","match":{}}]}"#,
                "at least one field",
            ),
            (
                r#"{"overrides":[{"id":"a","action":"downgrade","reason":"r","match":{"tenant":"x"}}]}"#,
                "needs a severity",
            ),
            (
                r#"{"overrides":[{"id":"a","action":"suppress","reason":"r","match":{"source_cidr":"10.0.0.0/33"}}]}"#,
                "source_cidr",
            ),
            (
                r#"{"overrides":[{"id":"a","action":"mute","reason":"r","match":{"tenant":"x"}}]}"#,
                "unknown variant",
            ),
        ] {
            let e = Overrides::from_json(json, "f.json").unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
    }
}
