//! The deterministic, calm one-paragraph summary of an answer.

use serde_json::Value;

use crate::intent::{Dim, Intent, Subject, What};
use crate::Table;

fn num(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn date(us: i64) -> String {
    let s = sentra_schemas::time::format_rfc3339_us(us);
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// "failed authentication events for user root from 203.0.113.7 between … and …".
fn describe(intent: &Intent) -> String {
    let f = &intent.filters;
    let mut s = String::new();
    match intent.subject {
        Subject::Signals => {
            if !f.severities.is_empty() {
                s.push_str(&f.severities.join(" or "));
                s.push(' ');
            }
            s.push_str("signals");
            if !f.signals.is_empty() {
                s.push_str(&format!(" of {}", f.signals.join(", ")));
            }
            if !f.mitre.is_empty() {
                s.push_str(&format!(" tagged {}", f.mitre.join(", ")));
            }
            if let Some(i) = &f.intent {
                s.push_str(&format!(" ({i})"));
            }
        }
        Subject::Events => {
            if let Some(o) = &f.outcome {
                s.push_str(if o == "failure" {
                    "failed "
                } else {
                    "successful "
                });
            }
            if !f.processes.is_empty() {
                s.push_str(&f.processes.join("/"));
                s.push(' ');
            }
            if let Some(c) = &f.category {
                s.push_str(c);
                s.push(' ');
            }
            if !f.actions.is_empty() {
                s.push_str(&f.actions.join("/").replace('_', " "));
                s.push(' ');
            }
            s.push_str("events");
        }
    }
    if !f.users.is_empty() {
        s.push_str(&format!(" for user {}", f.users.join(" or ")));
    }
    if !f.ips.is_empty() {
        s.push_str(&format!(" from {}", f.ips.join(" or ")));
    }
    if !f.hosts.is_empty() {
        s.push_str(&format!(" on {}", f.hosts.join(" or ")));
    }
    if let Some((from, to)) = f.time {
        s.push_str(&format!(" between {} and {}", date(from), date(to)));
    }
    s
}

/// The summary of `results` (one table per compiled query) for `intent`, ending with what in the question
/// was not understood, if anything.
pub fn summarize(intent: &Intent, tenant: &str, results: &[Table]) -> String {
    let answer = answer(intent, tenant, results);
    if intent.unclear.is_empty() {
        answer
    } else {
        format!("{answer} Note: {}.", intent.unclear.join("; "))
    }
}

fn answer(intent: &Intent, tenant: &str, results: &[Table]) -> String {
    let first = results.first().cloned().unwrap_or_default();
    let rows = &first.rows;
    let what = describe(intent);
    match intent.what {
        What::Count => {
            let key = if intent.subject == Subject::Signals {
                "signals"
            } else {
                "events"
            };
            let n = num(rows.first().and_then(|r| r.get(key)));
            format!("Tenant {tenant} has {n} {what}.")
        }
        _ if rows.is_empty() => format!("Nothing matched for tenant {tenant}: no {what}."),
        What::TopN => {
            let count_col = if intent.subject == Subject::Signals {
                "signals"
            } else {
                "events"
            };
            let key = first.columns.first().cloned().unwrap_or_default();
            let parts: Vec<String> = rows
                .iter()
                .take(5)
                .map(|r| format!("{} ({})", text(r.get(&key)), num(r.get(count_col))))
                .collect();
            format!(
                "Among {what} of tenant {tenant}, the top {} by {key}: {}.",
                rows.len(),
                parts.join(", ")
            )
        }
        What::Trend => {
            let count_col = if intent.subject == Subject::Signals {
                "signals"
            } else {
                "events"
            };
            let total: u64 = rows.iter().map(|r| num(r.get(count_col))).sum();
            let busiest = rows
                .iter()
                .max_by_key(|r| {
                    (
                        num(r.get(count_col)),
                        std::cmp::Reverse(text(r.get("bucket"))),
                    )
                })
                .expect("non-empty");
            let unit = if intent.group_by == Some(Dim::Day) {
                "day"
            } else {
                "hour"
            };
            format!(
                "{total} {what} for tenant {tenant} over {} {unit}(s) with activity; the busiest {unit} was {} with {}.",
                rows.len(),
                text(busiest.get("bucket")),
                num(busiest.get(count_col))
            )
        }
        What::List if intent.subject == Subject::Signals => {
            let top = &rows[0];
            format!(
                "{} {what} for tenant {tenant}, highest risk first; the first is {} ({}, risk {}): {}",
                rows.len(),
                text(top.get("signal")),
                text(top.get("severity")),
                text(top.get("risk_score")),
                text(top.get("narrative"))
            )
        }
        What::List => format!("{} {what} for tenant {tenant}, newest first.", rows.len()),
        What::ExplainSignal => {
            let r = &rows[0];
            format!(
                "Signal {} is {} ({}, risk {}) for tenant {tenant}, covering {} to {}. {} Suggested next step: {}",
                text(r.get("signal_id")),
                text(r.get("signal")),
                text(r.get("severity")),
                text(r.get("risk_score")),
                text(r.get("window_start_utc")),
                text(r.get("window_end_utc")),
                text(r.get("narrative")),
                text(r.get("recommendation"))
            )
        }
        What::Summarize => {
            let total: u64 = rows.iter().map(|r| num(r.get("events"))).sum();
            let kinds: Vec<String> = rows
                .iter()
                .take(4)
                .map(|r| {
                    format!(
                        "{} {}",
                        num(r.get("events")),
                        text(r.get("action")).replace('_', " ")
                    )
                })
                .collect();
            let signals = results.get(1).map(|t| t.rows.len()).unwrap_or(0);
            let mut s = format!(
                "Tenant {tenant} had {total} {what}, mostly {}.",
                kinds.join(", ")
            );
            match results.get(1).and_then(|t| t.rows.first()) {
                Some(top) => s.push_str(&format!(
                    " {signals} signal(s) were raised; the highest is {} ({}, risk {}).",
                    text(top.get("signal")),
                    text(top.get("severity")),
                    text(top.get("risk_score"))
                )),
                None => s.push_str(" No signals were raised."),
            }
            s
        }
    }
}
