//! Deterministic, explainable risk: `base + intensity + Σ modifiers`, clamped to [0, 1], every term listed
//! with its contribution and reason; and the narrative/recommendation templates.

use std::collections::BTreeMap;

use sentra_schemas::time::{civil_from_days, format_rfc3339_us};
use sentra_schemas::RiskFactor;

use super::definition::Detection;
use super::engine::Value;

/// Accounts whose targeting raises risk.
pub const PRIVILEGED_USERS: &[&str] = &["root", "admin", "administrator", "toor"];
/// Groups that grant administrative rights.
pub const PRIVILEGED_GROUPS: &[&str] = &["sudo", "wheel", "adm", "admin", "root"];

/// What a scored window knows.
pub struct Context<'a> {
    /// The detection.
    pub detection: &'a Detection,
    /// Merged aggregates by name.
    pub values: &'a BTreeMap<&'a str, &'a Value>,
    /// Group-by columns.
    pub keys: &'a [String],
    /// Their values.
    pub key_values: &'a [Option<String>],
    /// The tenant's UTC offset, minutes.
    pub utc_offset_min: i32,
}

impl Context<'_> {
    fn key(&self, col: &str) -> Option<&str> {
        let i = self.keys.iter().position(|k| k == col)?;
        self.key_values[i].as_deref()
    }

    fn set(&self, name: &str) -> Vec<&str> {
        match self.values.get(name) {
            Some(Value::Set(s)) => s.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    fn num(&self, name: &str) -> Option<f64> {
        self.values.get(name).and_then(|v| v.num())
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The risk score and the factors that make it up.
pub fn score(ctx: &Context<'_>) -> (f64, Vec<RiskFactor>) {
    let spec = &ctx.detection.risk;
    let mut factors = vec![RiskFactor {
        name: "base".into(),
        contribution: spec.base,
        detail: ctx.detection.title.clone(),
    }];
    if let Some(i) = &spec.intensity {
        let value = ctx.num(&i.aggregate).unwrap_or(0.0);
        let x = if value > 0.0 {
            (value / i.threshold).ln() / i.saturate_at.ln()
        } else {
            0.0
        };
        factors.push(RiskFactor {
            name: "intensity".into(),
            contribution: round3(i.weight * x.clamp(0.0, 1.0)),
            detail: format!(
                "{} = {value} (threshold {}, full weight at {}×)",
                i.aggregate, i.threshold, i.saturate_at
            ),
        });
    }
    for (name, &weight) in &spec.modifiers {
        if let Some(detail) = modifier(name, ctx) {
            factors.push(RiskFactor {
                name: name.clone(),
                contribution: weight,
                detail,
            });
        }
    }
    let total = round3(
        factors
            .iter()
            .map(|f| f.contribution)
            .sum::<f64>()
            .clamp(0.0, 1.0),
    );
    (total, factors)
}

/// Whether a named modifier applies, and why.
fn modifier(name: &str, ctx: &Context<'_>) -> Option<String> {
    match name {
        "privileged_target" => {
            let mut users: Vec<&str> = ctx.set("users");
            users.extend(ctx.set("targets"));
            users.extend(ctx.key("user_name"));
            users.extend(ctx.key("target_user"));
            let mut hit: Vec<&str> = users
                .into_iter()
                .filter(|u| PRIVILEGED_USERS.contains(u))
                .collect();
            let mut groups = ctx.set("groups");
            groups.extend(ctx.key("group_name"));
            hit.extend(groups.into_iter().filter(|g| PRIVILEGED_GROUPS.contains(g)));
            hit.sort_unstable();
            hit.dedup();
            (!hit.is_empty())
                .then(|| format!("privileged account or group involved: {}", hit.join(", ")))
        }
        "success_after_failures" => {
            let s = ctx.num("successes").unwrap_or(0.0);
            (s >= 1.0).then(|| format!("{s} successful login(s) followed the failures"))
        }
        "brute_forced_account" => {
            // The login succeeded where the failures were: the account the source had been failing against
            // (a detection keyed on the source), or from a source that had been failing against the account
            // (keyed on the account).
            let both = |a: &str, b: &str| -> Vec<&str> {
                let b = ctx.set(b);
                ctx.set(a).into_iter().filter(|x| b.contains(x)).collect()
            };
            let (accounts, sources) = (both("users", "failed_users"), both("ips", "failure_ips"));
            if !accounts.is_empty() {
                let from = ctx.key("source_ip").unwrap_or("the source");
                Some(format!(
                    "{from} logged in as {} after failing against that account",
                    accounts.join(", ")
                ))
            } else if !sources.is_empty() {
                let account = ctx.key("user_name").unwrap_or("the account");
                Some(format!(
                    "{account} logged in from {} after failures from there",
                    sources.join(", ")
                ))
            } else {
                None
            }
        }
        "many_distinct_users" => {
            let n = ctx.set("users").len();
            (n >= 5).then(|| format!("{n} distinct user names"))
        }
        "off_hours" => {
            let first = ctx.num("first_seen")? as i64;
            let local = first + i64::from(ctx.utc_offset_min) * 60_000_000;
            let secs = local.div_euclid(1_000_000);
            let days = secs.div_euclid(86_400);
            let hour = secs.rem_euclid(86_400) / 3600;
            let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Sunday
            let off = !(1..=5).contains(&weekday) || !(7..19).contains(&hour);
            off.then(|| {
                let (y, m, d) = civil_from_days(days);
                format!(
                    "started {y:04}-{m:02}-{d:02} {hour:02}h local time, outside Mon–Fri 07–19h"
                )
            })
        }
        _ => None,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f}"),
        Value::Set(s) => {
            let shown: Vec<&str> = s.iter().map(String::as_str).take(5).collect();
            match s.len().saturating_sub(shown.len()) {
                0 => shown.join(", "),
                more => format!("{} and {more} more", shown.join(", ")),
            }
        }
    }
}

/// Fills `{placeholder}`s: aggregates, group-by columns, `tenant`, `window_start`, `window_end` (UTC
/// `hh:mm:ss`) and `date` (UTC `YYYY-MM-DD`).
pub fn render(template: &str, ctx: &Context<'_>, tenant: &str, start: i64, end: i64) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let name = &after[..j];
        let value = match name {
            "tenant" => tenant.to_owned(),
            "window_start" => format_rfc3339_us(start)[11..19].to_owned(),
            "window_end" => format_rfc3339_us(end)[11..19].to_owned(),
            "date" => format_rfc3339_us(start)[..10].to_owned(),
            _ => match (ctx.key(name), ctx.values.get(name)) {
                (Some(k), _) => k.to_owned(),
                (None, Some(v)) => show(v),
                (None, None) => format!("{{{name}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}
