//! `journalctl -o json` entries: the journal's own field names around a message that carries no syslog header.
//!
//! An entry is recognized by its `MESSAGE` field. The program is `SYSLOG_IDENTIFIER` (else `_COMM`), the pid
//! `_PID` (else `SYSLOG_PID`), the host `_HOSTNAME`, the time `__REALTIME_TIMESTAMP` (else
//! `_SOURCE_REALTIME_TIMESTAMP`; microseconds since the epoch); the journal writes every value as a string. A message that is not valid UTF-8 is written as an
//! array of byte values, decoded here lossily: detection needs the text, `event.original` keeps the entry.

use std::borrow::Cow;

use serde_json::Value;

/// The fields of one journal entry Sentra reads, borrowing from the parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry<'a> {
    /// `MESSAGE`, decoded when the journal wrote it as bytes.
    pub message: Cow<'a, str>,
    /// `_HOSTNAME`.
    pub host: Option<&'a str>,
    /// `SYSLOG_IDENTIFIER`, else `_COMM`.
    pub program: Option<&'a str>,
    /// `_PID`, else `SYSLOG_PID`.
    pub pid: Option<u32>,
    /// `__REALTIME_TIMESTAMP` (else `_SOURCE_REALTIME_TIMESTAMP`), epoch microseconds.
    pub timestamp_us: Option<i64>,
}

/// Reads `v` as a journal entry; `None` when it has no `MESSAGE` (it is some other kind of document).
pub fn journal_entry(v: &Value) -> Option<JournalEntry<'_>> {
    let message = message_text(v.get("MESSAGE")?)?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let number = |key: &str| match v.get(key)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    Some(JournalEntry {
        message,
        host: text("_HOSTNAME"),
        program: text("SYSLOG_IDENTIFIER").or_else(|| text("_COMM")),
        pid: ["_PID", "SYSLOG_PID"]
            .iter()
            .find_map(|k| number(k).and_then(|n| u32::try_from(n).ok())),
        timestamp_us: ["__REALTIME_TIMESTAMP", "_SOURCE_REALTIME_TIMESTAMP"]
            .iter()
            .find_map(|k| number(k).and_then(|n| i64::try_from(n).ok())),
    })
}

/// `MESSAGE` as text: a string as is, an array of byte values decoded (invalid UTF-8 replaced).
fn message_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(items) => {
            let bytes = items
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()?;
            Some(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_journal_fields_and_decodes_byte_messages() {
        let v: Value = serde_json::from_str(
            r#"{"__REALTIME_TIMESTAMP":"1773450000123456","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"sshd",
                "_COMM":"sshd-session","_PID":"811","SYSLOG_PID":"9","MESSAGE":"Accepted publickey for a from 10.0.0.1 port 2 ssh2"}"#,
        )
        .unwrap();
        let e = journal_entry(&v).unwrap();
        assert_eq!(
            (e.host, e.program, e.pid, e.timestamp_us),
            (
                Some("web-1"),
                Some("sshd"),
                Some(811),
                Some(1_773_450_000_123_456)
            )
        );
        let v: Value = serde_json::from_str(
            r#"{"_COMM":"sshd","SYSLOG_PID":"9","MESSAGE":[73,110,118,97,108,105,100,32,117,115,101,114,32,255,32,102,114,111,109,32,49,46,50,46,51,46,52]}"#,
        )
        .unwrap();
        let e = journal_entry(&v).unwrap();
        assert_eq!(e.message, "Invalid user \u{fffd} from 1.2.3.4");
        assert_eq!(
            (e.program, e.pid, e.timestamp_us),
            (Some("sshd"), Some(9), None)
        );
        assert!(journal_entry(&serde_json::json!({"message": "x"})).is_none());
        assert!(journal_entry(&serde_json::json!({"MESSAGE": [300]})).is_none());
    }
}
