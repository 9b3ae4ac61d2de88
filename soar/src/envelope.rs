//! What responders receive. The webhook envelope is a contract (SOAR stories parse it): its JSON Schema is
//! `schemas/json/soar_envelope.schema.json`; `data` is the whole signal, so it may grow but never lose the
//! fields the contract names (`id`, `signal`, `risk_score`, `user`, `ip`, `recommendation`).

use std::borrow::Cow;

use sentra_schemas::text::printable;
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

/// A calm one-paragraph chat message (Slack incoming webhook, e-mail body) for `signal`. Every value from the
/// signal goes through [`printable`]: a user name or host comes from a log line, and its control characters
/// or bidi overrides must not act in a chat client, a mail reader or the terminal it is read in.
pub fn chat_text(signal: &Signal) -> String {
    let mut who = Vec::new();
    if let Some(u) = &signal.user {
        who.push(format!("user {}", printable(u)));
    }
    if let Some(ip) = &signal.ip {
        who.push(format!("source {}", printable(ip)));
    }
    if !signal.hosts.is_empty() {
        who.push(format!("host {}", printable(&signal.hosts.join(", "))));
    }
    let techniques: Vec<&str> = signal.mitre.iter().map(|m| m.technique.as_str()).collect();
    format!(
        "Sentra signal for {tenant}: {name} ({severity}, risk {risk:.2}){who}.\n{narrative}\nSuggested next step: {recommendation}\nMITRE {mitre} · signal id {id}",
        tenant = signal.tenant.as_str(),
        name = printable(&signal.signal),
        severity = signal.severity.as_str(),
        risk = signal.risk_score,
        who = if who.is_empty() { String::new() } else { format!(", {}", who.join(", ")) },
        narrative = printable(&signal.narrative),
        recommendation = printable(&signal.recommendation),
        mitre = if techniques.is_empty() { "-".into() } else { printable(&techniques.join(", ")).into_owned() },
        id = printable(&signal.id),
    )
}

/// The Slack incoming-webhook body for `signal`: [`chat_text`] through [`slack_escape`].
pub fn slack_body(signal: &Signal) -> Value {
    json!({ "text": slack_escape(&chat_text(signal)) })
}

/// `text` made inert for Slack: `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;` (Slack's own escaping),
/// so a value from a log line cannot form a mention (`<!channel>`, `<@U123>`) or a link whose label hides
/// its target (`<http://evil.example|your bank>`). Slack shows the escaped text as typed.
pub fn slack_escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The e-mail subject for `signal`: one line whatever the signal holds (control characters, CR and LF
/// included, are shown as escapes by [`printable`], and Unicode line and paragraph separators become
/// spaces), so no value can end the header and start another. The body is plain text ([`chat_text`]);
/// no HTML part is sent.
pub fn mail_subject(signal: &Signal) -> String {
    let subject = format!(
        "Sentra: {} for {} ({}, risk {:.2})",
        printable(&signal.signal),
        printable(signal.tenant.as_str()),
        signal.severity.as_str(),
        signal.risk_score
    );
    subject.replace(['\u{2028}', '\u{2029}'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentra_schemas::{MitreTechnique, Severity, TenantId};

    /// A signal whose user name, host and narrative carry what an attacker can put in a log line.
    fn hostile_signal() -> Signal {
        Signal {
            id: "abcdef012345".into(),
            signal: "ssh_brute_force".into(),
            tenant: TenantId::new("acme").unwrap(),
            hosts: vec!["bastion-1\x1b]0;owned\x07".into()],
            user: Some("\x1b[2Jroot\rALL CLEAR\0\u{202e}".into()),
            ip: Some("203.0.113.7".into()),
            window_start: 1_773_446_400_000_000,
            window_end: 1_773_446_460_000_000,
            count: 9,
            risk_score: 0.7,
            severity: Severity::High,
            risk_factors: vec![],
            mitre: vec![MitreTechnique {
                technique: "T1110.001".into(),
                tactic: "Credential Access".into(),
            }],
            compliance: vec![],
            intent: "Credential Access".into(),
            narrative: "9 failed logins for \x1b[2Jroot\rALL CLEAR\0 from 203.0.113.7".into(),
            recommendation: "Block 203.0.113.7.".into(),
            evidence: vec![],
            suppressed: false,
            override_applied: None,
        }
    }

    #[test]
    fn slack_text_cannot_form_mentions_or_disguised_links() {
        let mut signal = hostile_signal();
        signal.user = Some("<!channel> & <@U024BE7LH>".into());
        signal.hosts = vec!["<!here>".into()];
        signal.narrative = "6 failed logins; see <http://evil.example/login|your bank>".into();
        signal.recommendation = "Reset <!everyone>'s password.".into();
        let slack = slack_body(&signal);
        let text = slack["text"].as_str().unwrap();
        assert!(!text.contains(['<', '>']), "{text}");
        assert!(
            text.contains("user &lt;!channel&gt; &amp; &lt;@U024BE7LH&gt;"),
            "{text}"
        );
        assert!(
            text.contains("&lt;http://evil.example/login|your bank&gt;"),
            "{text}"
        );
        assert!(text.contains("host &lt;!here&gt;"), "{text}");
        // Slack shows the escaped text as it was typed; e-mail, plain text, keeps it as it is.
        assert!(chat_text(&signal).contains("user <!channel> & <@U024BE7LH>"));
        assert_eq!(slack_escape("plain"), Cow::Borrowed("plain"));
    }

    #[test]
    fn an_email_subject_stays_one_line() {
        let mut signal = hostile_signal();
        signal.signal = "brute\r\nBcc: everyone@example.org\n\nbody\u{2028}more\u{85}".into();
        let subject = mail_subject(&signal);
        assert!(
            !subject.contains(['\r', '\n', '\u{2028}', '\u{85}']),
            "{subject:?}"
        );
        assert!(
            subject.starts_with("Sentra: brute\\r\\nBcc: everyone@example.org"),
            "{subject}"
        );
    }

    #[test]
    fn control_characters_never_reach_slack_or_email_text() {
        let signal = hostile_signal();
        let slack = slack_body(&signal);
        let texts = [
            slack["text"].as_str().unwrap().to_owned(),
            chat_text(&signal),
        ];
        for text in texts {
            for raw in ['\x1b', '\r', '\0', '\x07', '\u{202e}'] {
                assert!(!text.contains(raw), "{raw:?} in {text:?}");
            }
            assert!(
                text.contains("user \\x1b[2Jroot\\rALL CLEAR\\0\\u{202e}"),
                "{text}"
            );
            assert!(text.contains("9 failed logins for \\x1b[2Jroot"), "{text}");
            // The message's own line breaks stay.
            assert_eq!(text.lines().count(), 4, "{text}");
        }
    }
}
