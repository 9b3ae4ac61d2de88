//! What responders receive. The webhook envelope is a contract (SOAR stories parse it): its JSON Schema is
//! `schemas/json/soar_envelope.schema.json`; `data` is the whole signal, so it may grow but never lose the
//! fields the contract names (`id`, `signal`, `risk_score`, `user`, `ip`, `recommendation`).

use sentra_schemas::Signal;
use serde_json::{json, Value};

/// `event_type` of every envelope.
pub const EVENT_TYPE: &str = "sentra_security_signal";

/// `source` of every envelope: `sentra-signal-engine-<version>`.
pub fn source() -> String {
    format!("sentra-signal-engine-{}", env!("CARGO_PKG_VERSION"))
}

/// The webhook envelope for `signal`. `timestamp_utc` is the end of the signal's window (to the second),
/// so the same signal always produces the same bytes, whichever attempt sends it.
pub fn envelope(signal: &Signal) -> Value {
    let data = serde_json::to_value(signal).expect("signals serialize");
    json!({
        "event_type": EVENT_TYPE,
        "timestamp_utc": utc_seconds(signal.window_end),
        "severity": signal.severity.as_str(),
        "source": source(),
        "data": data,
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch microseconds.
fn utc_seconds(us: i64) -> String {
    let full = sentra_schemas::time::format_rfc3339_us(us);
    format!("{}Z", &full[..19])
}

/// A calm one-paragraph chat message (Slack incoming webhook, e-mail body) for `signal`.
pub fn chat_text(signal: &Signal) -> String {
    let mut who = Vec::new();
    if let Some(u) = &signal.user {
        who.push(format!("user {u}"));
    }
    if let Some(ip) = &signal.ip {
        who.push(format!("source {ip}"));
    }
    if !signal.hosts.is_empty() {
        who.push(format!("host {}", signal.hosts.join(", ")));
    }
    let techniques: Vec<&str> = signal.mitre.iter().map(|m| m.technique.as_str()).collect();
    format!(
        "Sentra signal for {tenant}: {name} ({severity}, risk {risk:.2}){who}.\n{narrative}\nSuggested next step: {recommendation}\nMITRE {mitre} · signal id {id}",
        tenant = signal.tenant.as_str(),
        name = signal.signal,
        severity = signal.severity.as_str(),
        risk = signal.risk_score,
        who = if who.is_empty() { String::new() } else { format!(", {}", who.join(", ")) },
        narrative = signal.narrative,
        recommendation = signal.recommendation,
        mitre = if techniques.is_empty() { "-".into() } else { techniques.join(", ") },
        id = signal.id,
    )
}

/// The Slack incoming-webhook body for `signal`.
pub fn slack_body(signal: &Signal) -> Value {
    json!({ "text": chat_text(signal) })
}
