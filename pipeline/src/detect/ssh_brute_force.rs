//! SSH brute force from one source (MITRE T1110.001): at least `threshold` failed SSH logins from one
//! source IP within one tumbling event-time window, per tenant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sentra_schemas::time::format_rfc3339_us;
use sentra_schemas::{
    hex_digest, Event, MitreTechnique, Outcome, RiskFactor, Severity, Signal, TenantId,
};

use super::{BruteForceConfig, Observed};

/// Detection name, as it appears in signals.
pub const NAME: &str = "ssh_brute_force";
const MAX_EVIDENCE: usize = 10;
const PRIVILEGED_USERS: &[&str] = &["root", "admin", "administrator", "toor"];

#[derive(Debug, Default)]
struct Window {
    count: u64,
    users: BTreeSet<String>,
    hosts: BTreeSet<String>,
    evidence: Vec<String>,
}

/// The running state of the detection: open windows and per-tenant watermarks.
#[derive(Debug)]
pub struct SshBruteForce {
    config: BruteForceConfig,
    /// Open windows keyed by (tenant, window start µs, source IP): ordered so closing is a range walk and
    /// emission order is deterministic.
    open: BTreeMap<(TenantId, i64, String), Window>,
    max_event_us: HashMap<TenantId, i64>,
}

impl SshBruteForce {
    /// A detection with no state.
    pub fn new(config: BruteForceConfig) -> Self {
        Self {
            config,
            open: BTreeMap::new(),
            max_event_us: HashMap::new(),
        }
    }

    fn window_us(&self) -> i64 {
        self.config.window_secs as i64 * 1_000_000
    }

    fn watermark(&self, tenant: &TenantId) -> Option<i64> {
        self.max_event_us
            .get(tenant)
            .map(|m| m - self.config.allowed_lateness_secs as i64 * 1_000_000)
    }

    /// Offers one event. Every event advances its tenant's event-time clock; failed SSH logins with a
    /// source IP are counted in their window.
    pub fn observe(&mut self, e: &Event) -> Observed {
        let window_end_at_watermark = self.watermark(&e.tenant);
        match self.max_event_us.get_mut(&e.tenant) {
            Some(max) => *max = (*max).max(e.timestamp_us),
            None => {
                self.max_event_us.insert(e.tenant.clone(), e.timestamp_us);
            }
        }
        let relevant = e.outcome == Outcome::Failure
            && matches!(e.action.as_str(), "ssh_login" | "ssh_invalid_user_login")
            && e.source_ip.is_some();
        let Some(ip) = e.source_ip.as_ref().filter(|_| relevant) else {
            return Observed::Ignored;
        };
        let start = e.timestamp_us.div_euclid(self.window_us()) * self.window_us();
        if let Some(wm) = window_end_at_watermark {
            if start + self.window_us() <= wm {
                return Observed::Late;
            }
        }
        let w = self
            .open
            .entry((e.tenant.clone(), start, ip.clone()))
            .or_default();
        w.count += 1;
        if let Some(u) = &e.user {
            if w.users.len() < 64 || w.users.contains(u) {
                w.users.insert(u.clone());
            }
        }
        if !w.hosts.contains(&e.host) {
            w.hosts.insert(e.host.clone());
        }
        if w.evidence.len() < MAX_EVIDENCE {
            w.evidence.push(e.id.clone());
        }
        Observed::Counted
    }

    /// Closes every window whose end the tenant's watermark has passed and returns their signals,
    /// ordered by (tenant, window start, IP).
    pub fn close_ready(&mut self) -> Vec<Signal> {
        let ready: Vec<_> = self
            .open
            .keys()
            .filter(|(t, start, _)| {
                self.watermark(t)
                    .is_some_and(|wm| start + self.window_us() <= wm)
            })
            .cloned()
            .collect();
        self.emit(ready)
    }

    /// Closes every open window (end of input) and returns their signals.
    pub fn close_all(&mut self) -> Vec<Signal> {
        let all: Vec<_> = self.open.keys().cloned().collect();
        self.emit(all)
    }

    fn emit(&mut self, keys: Vec<(TenantId, i64, String)>) -> Vec<Signal> {
        let mut out = Vec::new();
        for key in keys {
            if let Some(w) = self.open.remove(&key) {
                if w.count >= self.config.threshold {
                    let (tenant, start, ip) = key;
                    out.push(self.signal(tenant, start, ip, w));
                }
            }
        }
        out
    }

    fn signal(&self, tenant: TenantId, start: i64, ip: String, w: Window) -> Signal {
        let end = start + self.window_us();
        let threshold = self.config.threshold as f64;
        let mut factors = vec![RiskFactor {
            name: "base".into(),
            contribution: 0.4,
            detail: "repeated failed SSH logins from one source".into(),
        }];
        // Saturates at 10× the threshold: 0 at the threshold, 0.3 at ten times it.
        let intensity = 0.3 * ((w.count as f64 / threshold).ln() / 10f64.ln()).clamp(0.0, 1.0);
        factors.push(RiskFactor {
            name: "intensity".into(),
            contribution: round3(intensity),
            detail: format!(
                "{} failures against a threshold of {}",
                w.count, self.config.threshold
            ),
        });
        let privileged: Vec<&str> = w
            .users
            .iter()
            .map(String::as_str)
            .filter(|u| PRIVILEGED_USERS.contains(u))
            .collect();
        if !privileged.is_empty() {
            factors.push(RiskFactor {
                name: "privileged_target".into(),
                contribution: 0.15,
                detail: format!("targeted privileged account(s): {}", privileged.join(", ")),
            });
        }
        if w.users.len() >= 5 {
            factors.push(RiskFactor {
                name: "many_users".into(),
                contribution: 0.1,
                detail: format!("{} distinct user names tried", w.users.len()),
            });
        }
        let risk = round3(
            factors
                .iter()
                .map(|f| f.contribution)
                .sum::<f64>()
                .clamp(0.0, 1.0),
        );
        let hosts: Vec<String> = w.hosts.into_iter().collect();
        let users: Vec<&str> = w.users.iter().map(String::as_str).take(5).collect();
        let more = w.users.len().saturating_sub(users.len());
        let users_text = if more > 0 {
            format!("{} and {more} more", users.join(", "))
        } else {
            users.join(", ")
        };
        let narrative = format!(
            "Between {} and {} UTC, {} SSH logins from {ip} failed on {} (user names tried: {users_text}). \
             This pattern is consistent with automated password guessing.",
            &format_rfc3339_us(start)[11..19],
            &format_rfc3339_us(end)[11..19],
            w.count,
            hosts.join(", "),
        );
        let recommendation = format!(
            "Check whether {ip} is a known scanner or internal tool. If it is not, block it at the perimeter, \
             confirm no login from it succeeded, and prefer key-based SSH authentication."
        );
        let single_user = (w.users.len() == 1)
            .then(|| w.users.iter().next().cloned())
            .flatten();
        Signal {
            id: hex_digest(
                &[
                    tenant.as_str().as_bytes(),
                    NAME.as_bytes(),
                    ip.as_bytes(),
                    &start.to_le_bytes(),
                ],
                12,
            ),
            signal: NAME.into(),
            tenant,
            hosts,
            user: single_user,
            ip: Some(ip),
            window_start: start,
            window_end: end,
            count: w.count,
            risk_score: risk,
            severity: Severity::from_risk(risk),
            risk_factors: factors,
            mitre: vec![MitreTechnique {
                technique: "T1110.001".into(),
                tactic: "Credential Access".into(),
            }],
            compliance: vec![
                "SOC2:CC6.1".into(),
                "SOC2:CC7.2".into(),
                "ISO27001:A.8.5".into(),
                "ISO27001:A.8.16".into(),
            ],
            intent: "Credential Access".into(),
            narrative,
            recommendation,
            evidence: w.evidence,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Input, NormalizeConfig, Normalizer, YearPolicy};

    fn events(lines: &[String]) -> Vec<Event> {
        let mut n = Normalizer::new(NormalizeConfig {
            year: YearPolicy::Fixed(2026),
            ..Default::default()
        });
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let src = format!("t:{i}");
                let input = Input {
                    bytes: l.as_bytes(),
                    source: &src,
                    header_tenant: None,
                    fallback_tenant: Some("acme"),
                    reference_us: 0,
                    reference_is_event_time: false,
                };
                n.normalize(&input).unwrap()
            })
            .collect()
    }

    fn fail(sec: u32, ip: &str, user: &str) -> String {
        format!("Mar 14 00:{:02}:{:02} web-1 sshd[1]: Failed password for {user} from {ip} port 22 ssh2", sec / 60, sec % 60)
    }

    fn run(lines: &[String]) -> Vec<Signal> {
        let mut d = SshBruteForce::new(BruteForceConfig::default());
        let mut out = Vec::new();
        for e in events(lines) {
            d.observe(&e);
            out.extend(d.close_ready());
        }
        out.extend(d.close_all());
        out
    }

    #[test]
    fn fires_at_threshold_and_not_below() {
        let five: Vec<String> = (0..5).map(|i| fail(i, "203.0.113.7", "root")).collect();
        let s = run(&five);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].count, s[0].ip.as_deref(), s[0].user.as_deref()),
            (5, Some("203.0.113.7"), Some("root"))
        );
        assert_eq!(s[0].mitre[0].technique, "T1110.001");
        assert_eq!(s[0].risk_score, 0.55); // base 0.4 + intensity 0 + privileged 0.15
        assert_eq!(s[0].severity, Severity::High);
        assert_eq!(s[0].evidence.len(), 5);
        assert!(run(&five[..4]).is_empty());
    }

    #[test]
    fn windows_are_per_source_and_tumbling() {
        // 3 failures in minute 0 and 3 in minute 1 from one IP: no window reaches 5.
        let mut lines: Vec<String> = (57..63).map(|s| fail(s, "198.51.100.1", "bob")).collect();
        lines.extend((0..4).map(|i| fail(i, "198.51.100.2", "bob")));
        assert!(run(&lines).is_empty());
    }

    #[test]
    fn watermark_closes_windows_and_late_events_are_not_counted() {
        let mut d = SshBruteForce::new(BruteForceConfig::default());
        let mut lines: Vec<String> = (0..5).map(|i| fail(i, "203.0.113.7", "root")).collect();
        lines.push(fail(120, "192.0.2.1", "x")); // moves the watermark to 00:01:30
        lines.push(fail(10, "203.0.113.7", "root")); // window [00:00, 00:01) closed: late
        let evs = events(&lines);
        let mut signals = Vec::new();
        let mut observed = Vec::new();
        for e in &evs {
            observed.push(d.observe(e));
            signals.extend(d.close_ready());
        }
        assert_eq!(observed.last(), Some(&Observed::Late));
        assert_eq!(signals.len(), 1);
        assert_eq!(signals[0].count, 5);
    }

    #[test]
    fn same_input_same_signal_ids() {
        let lines: Vec<String> = (0..7).map(|i| fail(i, "203.0.113.7", "root")).collect();
        assert_eq!(run(&lines), run(&lines));
        assert_eq!(run(&lines)[0].id.len(), 12);
    }

    #[test]
    fn any_event_of_the_tenant_advances_its_watermark() {
        let mut lines: Vec<String> = (0..5).map(|i| fail(i, "203.0.113.7", "root")).collect();
        lines.push(
            "Mar 14 00:05:00 web-1 sshd[1]: Accepted password for a from 10.0.0.1 port 22 ssh2"
                .into(),
        );
        let mut d = SshBruteForce::new(BruteForceConfig::default());
        let mut signals = Vec::new();
        for e in events(&lines) {
            d.observe(&e);
            signals.extend(d.close_ready());
        }
        assert_eq!(
            signals.len(),
            1,
            "the success line should close the failures' window"
        );
    }
}
