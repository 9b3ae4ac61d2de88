//! Linux audit records: `/var/log/audit/audit.log` lines, the same forwarded through syslog (audisp,
//! `audit[pid]:` from journald, the kernel's `audit: type=1100 …`), and the enriched format whose
//! interpreted fields follow a `\x1d`.
//!
//! ```text
//! type=USER_AUTH msg=audit(1733300000.123:4567): pid=811 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct="root" exe="/usr/sbin/sshd" hostname=203.0.113.5 addr=203.0.113.5 terminal=ssh res=failed'
//! ```
//!
//! Values the kernel or libaudit found unsafe to print (spaces, quotes, control bytes) are written as hex
//! without quotes; `acct=` and `cmd=` are decoded. The records of one event share `audit(…:SERIAL)`: the
//! first understood record of a serial is the event, later ones are kept as `unknown` ([`SeenSerials`]).

use std::borrow::Cow;

use sentra_schemas::{Category, Outcome};

use super::auth::{valid_address, Classified};
use super::{find_byte, split_byte};

/// One audit record, borrowing from its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord<'a> {
    /// `node=` of the writing host, when the record names one.
    pub node: Option<&'a str>,
    /// The record type (`USER_AUTH`); kernel numbers are translated.
    pub record_type: &'a str,
    /// `audit(SECS.MILLIS:SERIAL)` as (epoch microseconds, serial), when the record carries it.
    pub stamp: Option<(i64, u64)>,
    /// The fields after the stamp, up to the enriched part.
    pub fields: &'a str,
    /// The enriched (`ausearch -i`-style) fields after `\x1d`, empty when absent.
    pub enriched: &'a str,
}

/// Programs whose syslog lines are audit records.
#[inline]
pub fn is_audit_program(program: &str) -> bool {
    matches!(
        program,
        "audit" | "auditd" | "audispd" | "audisp-syslog" | "kernel"
    )
}

/// Parses `[node=N ]type=T msg=audit(S.MS:SERIAL): FIELDS`, `audit: type=NNNN audit(S.MS:SERIAL): FIELDS` (the
/// kernel's form) or `T pid=… ` (journald's); `None` for anything else.
pub fn parse_record(line: &str) -> Option<AuditRecord<'_>> {
    let (line, enriched) = split_byte(line, 0x1d).unwrap_or((line, ""));
    let mut s = line.strip_prefix("audit: ").unwrap_or(line);
    let mut node = None;
    if let Some(r) = s.strip_prefix("node=") {
        let (n, rest) = split_byte(r, b' ')?;
        node = Some(n);
        s = rest;
    }
    let Some(r) = s.strip_prefix("type=") else {
        // journald: "USER_AUTH pid=811 uid=0 … msg='…'"
        let (record_type, fields) = split_byte(s, b' ')?;
        let named = !record_type.is_empty()
            && record_type
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_');
        return (named && fields.starts_with("pid=")).then_some(AuditRecord {
            node,
            record_type,
            stamp: None,
            fields,
            enriched,
        });
    };
    let (record_type, r) = split_byte(r, b' ')?;
    let r = r.strip_prefix("msg=").unwrap_or(r).strip_prefix("audit(")?;
    let (stamp, fields) = match r.split_once("): ") {
        Some(split) => split,
        None => (r.strip_suffix(')')?, ""),
    };
    Some(AuditRecord {
        node,
        record_type: type_name(record_type),
        stamp: Some(parse_stamp(stamp)?),
        fields,
        enriched,
    })
}

/// `1733300000.123:4567` → (epoch microseconds, serial).
fn parse_stamp(s: &str) -> Option<(i64, u64)> {
    let (time, serial) = split_byte(s, b':')?;
    let (secs, millis) = split_byte(time, b'.').unwrap_or((time, "0"));
    let secs: i64 = secs.parse().ok()?;
    let millis: i64 = millis.parse().ok().filter(|m| (0..1000).contains(m))?;
    Some((
        secs.checked_mul(1_000_000)?.checked_add(millis * 1000)?,
        serial.parse().ok()?,
    ))
}

/// The name of a kernel record type number (linux/audit.h) Sentra classifies; other numbers stay as written.
fn type_name(t: &str) -> &str {
    match t {
        "1100" => "USER_AUTH",
        "1101" => "USER_ACCT",
        "1102" => "USER_MGMT",
        "1108" => "USER_CHAUTHTOK",
        "1112" => "USER_LOGIN",
        "1114" => "ADD_USER",
        "1115" => "DEL_USER",
        "1116" => "ADD_GROUP",
        "1117" => "DEL_GROUP",
        "1123" => "USER_CMD",
        other => other,
    }
}

/// The value of `key` in the record's `k=v` fields, searched in the user message (`msg='…'`) first, then in
/// the record's own fields. Quoted values lose their quotes; `?` (unknown) is `None`.
fn field<'a>(fields: &'a str, key: &str) -> Option<Raw<'a>> {
    let (outer, inner) = match fields.split_once("msg='") {
        Some((outer, inner)) => (outer, inner.strip_suffix('\'').unwrap_or(inner)),
        None => (fields, ""),
    };
    [inner, outer].into_iter().find_map(|part| {
        pairs(part).find_map(|(k, v)| match v {
            _ if k != key => None,
            Raw::Bare("" | "?") => None,
            v => Some(v),
        })
    })
}

/// The `k=v` pairs of `s` in order. A value is either quoted (`acct="(invalid user)"`, spaces allowed) or
/// runs to the next space; words without `=` (`op=adding user`) are skipped.
fn pairs(s: &str) -> impl Iterator<Item = (&str, Raw<'_>)> {
    let mut rest = s;
    std::iter::from_fn(move || loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return None;
        }
        let word_end = find_byte(rest, b' ').unwrap_or(rest.len());
        let Some(eq) = find_byte(&rest[..word_end], b'=') else {
            rest = &rest[word_end..];
            continue;
        };
        let key = &rest[..eq];
        let after = &rest[eq + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            if let Some(close) = find_byte(quoted, b'"') {
                rest = &quoted[close + 1..];
                return Some((key, Raw::Quoted(&quoted[..close])));
            }
        }
        let end = find_byte(after, b' ').unwrap_or(after.len());
        rest = &after[end..];
        return Some((key, Raw::Bare(&after[..end])));
    })
}

/// A field value as written: quoted text, or a bare value (hex-encoded when the writer found it unsafe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raw<'a> {
    Quoted(&'a str),
    Bare(&'a str),
}

impl<'a> Raw<'a> {
    /// The value as text, a bare hex value decoded (lossily), a bare non-hex one as is.
    fn text(self) -> Cow<'a, str> {
        match self {
            Raw::Quoted(s) => Cow::Borrowed(s),
            Raw::Bare(s) => match decode_hex(s) {
                Some(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
                None => Cow::Borrowed(s),
            },
        }
    }

    /// The value as written, without decoding.
    fn as_str(self) -> &'a str {
        match self {
            Raw::Quoted(s) | Raw::Bare(s) => s,
        }
    }
}

/// `s` decoded from hex when it is an even number of hex digits.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// The values of a record that may need decoding, owned so the classification can borrow them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// `acct=`, decoded.
    pub account: Option<Cow<'a, str>>,
    /// `cmd=`, decoded.
    pub command: Option<Cow<'a, str>>,
}

/// Decodes the hex-capable fields of `record`.
pub fn decode<'a>(record: &AuditRecord<'a>) -> Decoded<'a> {
    Decoded {
        account: field(record.fields, "acct").map(Raw::text),
        command: field(record.fields, "cmd").map(Raw::text),
    }
}

/// The program that wrote the record: the base name of `exe=` (`/usr/sbin/sshd` → `sshd`).
pub fn program<'a>(record: &AuditRecord<'a>) -> Option<&'a str> {
    let exe = field(record.fields, "exe")?.as_str();
    exe.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The process id of the record (`pid=`).
pub fn pid(record: &AuditRecord<'_>) -> Option<u32> {
    field(record.fields, "pid")?.as_str().parse().ok()
}

/// Classifies `record`, borrowing decoded values from `decoded`; `None` for record types Sentra does not
/// understand (SYSCALL, PATH, …).
pub fn classify<'a>(record: &AuditRecord<'a>, decoded: &'a Decoded<'a>) -> Option<Classified<'a>> {
    use Category::*;
    let (category, event_type, action) = match record.record_type {
        "USER_AUTH" => (Authentication, "info", "audit_user_auth"),
        "USER_ACCT" => (Authentication, "info", "audit_user_acct"),
        "USER_LOGIN" => (Authentication, "start", "audit_user_login"),
        "USER_CMD" => (Process, "start", "audit_user_cmd"),
        "ADD_USER" => (Iam, "creation", "audit_add_user"),
        "ADD_GROUP" => (Iam, "creation", "audit_add_group"),
        "DEL_USER" => (Iam, "deletion", "audit_del_user"),
        "DEL_GROUP" => (Iam, "deletion", "audit_del_group"),
        "USER_MGMT" => (Iam, "change", "audit_user_mgmt"),
        "USER_CHAUTHTOK" => (Iam, "change", "audit_user_chauthtok"),
        _ => return None,
    };
    let outcome = match field(record.fields, "res").map(Raw::as_str) {
        Some("success" | "yes") => Outcome::Success,
        Some("failed" | "no") => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    let mut c = Classified::unknown();
    c.category = category;
    c.event_type = event_type;
    c.action = action;
    c.outcome = outcome;
    // `acct=` is the account authenticated or acted upon; the enriched `AUID=` the user behind the session.
    let account = decoded
        .account
        .as_deref()
        .filter(|a| !matches!(*a, "(invalid user)" | "(unknown)"));
    let actor = enriched(record.enriched, "AUID").filter(|a| *a != "unset");
    match category {
        Iam => {
            c.user = actor;
            if matches!(record.record_type, "ADD_GROUP" | "DEL_GROUP") {
                c.group = account.or_else(|| enriched(record.enriched, "ID"));
            } else {
                c.target_user = account.or_else(|| enriched(record.enriched, "ID"));
            }
        }
        Process => {
            c.user = actor.or_else(|| enriched(record.enriched, "UID"));
            c.command = decoded.command.as_deref();
        }
        _ => {
            c.user = account.or_else(|| enriched(record.enriched, "ID"));
            // The peer of a PAM conversation; account tools write their own host here, not a source.
            c.source_ip = ["addr", "hostname"]
                .iter()
                .find_map(|k| field(record.fields, k).and_then(|v| valid_address(v.as_str())));
        }
    }
    Some(c)
}

/// The value of `key` in the enriched fields (`UID="root" AUID="alice"`).
fn enriched<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(' ').find_map(|token| {
        let v = token.strip_prefix(key)?.strip_prefix("=\"")?;
        Some(&v[..find_byte(v, b'"')?])
    })
}

/// How many recent serials [`SeenSerials`] remembers.
const SEEN_SERIALS: usize = 64;

/// The serials of the last audit events that produced an event, so the other records of the same event
/// (which share `audit(…:SERIAL)`) are not counted again. Bounded: the records of one event are written
/// together, so only the most recent serials matter.
#[derive(Debug, Clone, Default)]
pub struct SeenSerials {
    recent: std::collections::VecDeque<(u64, i64, u64)>,
}

impl SeenSerials {
    /// Records the event `(node, stamp)`; `false` when it was already recorded.
    pub fn first(&mut self, node: Option<&str>, (us, serial): (i64, u64)) -> bool {
        let key = (node_key(node), us, serial);
        if self.recent.contains(&key) {
            return false;
        }
        if self.recent.len() == SEEN_SERIALS {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
        true
    }
}

/// A stable key of a node name (FNV-1a), so the remembered serials own nothing.
fn node_key(node: Option<&str>) -> u64 {
    node.unwrap_or("")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_types_and_hex_values() {
        let r = parse_record("node=web-1 type=USER_CMD msg=audit(1733300000.123:4567): pid=9 uid=1000 auid=1000 ses=2 msg='cwd=\"/home/a\" cmd=636174202F6574632F736861646F77 exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'\u{1d}UID=\"alice\" AUID=\"alice\"").unwrap();
        assert_eq!(
            (r.node, r.record_type, r.stamp),
            (
                Some("web-1"),
                "USER_CMD",
                Some((1_733_300_000_123_000, 4567))
            )
        );
        let d = decode(&r);
        let c = classify(&r, &d).unwrap();
        assert_eq!(c.command, Some("cat /etc/shadow"));
        assert_eq!((c.user, c.outcome), (Some("alice"), Outcome::Success));
        assert_eq!((program(&r), pid(&r)), (Some("sudo"), Some(9)));
        let k = parse_record("audit: type=1100 audit(1733300000.5:7): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.5 terminal=ssh res=failed'").unwrap();
        assert_eq!(k.record_type, "USER_AUTH");
        let d = decode(&k);
        let c = classify(&k, &d).unwrap();
        assert_eq!(
            (c.user, c.source_ip, c.outcome),
            (Some("root"), Some("203.0.113.5"), Outcome::Failure)
        );
        let q = parse_record("type=USER_LOGIN msg=audit(1.0:2): pid=3 msg='op=login acct=\"(invalid user)\" exe=\"/usr/sbin/sshd\" addr=192.0.2.1 res=failed'").unwrap();
        let d = decode(&q);
        assert_eq!(d.account.as_deref(), Some("(invalid user)"));
        let c = classify(&q, &d).unwrap();
        assert_eq!((c.user, c.source_ip), (None, Some("192.0.2.1")));
        for bad in [
            "type=X",
            "type=X msg=audit(1.2): x",
            "hello world",
            "USER_AUTH x=1",
        ] {
            assert!(parse_record(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_serial_counts_once_and_memory_is_bounded() {
        let mut seen = SeenSerials::default();
        assert!(seen.first(None, (1, 7)));
        assert!(!seen.first(None, (1, 7)));
        assert!(seen.first(Some("other"), (1, 7)));
        for serial in 100..(100 + SEEN_SERIALS as u64) {
            assert!(seen.first(None, (1, serial)));
        }
        assert_eq!(seen.recent.len(), SEEN_SERIALS);
        assert!(
            seen.first(None, (1, 7)),
            "forgotten once older than the window"
        );
    }
}
