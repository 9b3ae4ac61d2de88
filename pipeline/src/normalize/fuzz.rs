//! Property-based fuzzing of every parser that reads hostile input: no input may panic one.
//!
//! Inputs are near-valid: real lines as sshd, sudo, su, PAM and shadow-utils write them (classic, RFC 5424
//! and ISO-8601 framing, shipper JSON and ECS documents, and every line of the golden corpora: journald
//! entries, auditd records, legacy PAM, agents' documents), then mutated: bytes replaced (invalid UTF-8
//! included), multi-byte characters and parser-significant pieces (` from `, `[`, `\`, quotes) inserted,
//! numbers made huge, the line truncated anywhere. The case count follows `PROPTEST_CASES` (proptest's
//! default, 256, in a normal test run); `scripts/fuzz.sh` runs a million in a release build. Inputs that
//! once crashed a parser are in `pipeline/tests/fuzz-regressions/`, replayed by an ordinary test.

use std::sync::LazyLock;

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Lines as the programs Sentra classifies write them, in every framing Sentra reads.
const LINES: &[&str] = &[
    "Mar 14 09:14:01 bastion-1 sshd[3110]: Failed password for invalid user admin from 203.0.113.7 port 40101 ssh2",
    "Mar  4 09:14:01 bastion-1 sshd[3110]: Accepted publickey for deploy from 2001:db8::7 port 22 ssh2: ED25519 SHA256:fU7wicpHdEoziIbob",
    "<38>Mar  4 10:00:00 web-1 su: (to root) alice on pts/0",
    "<86>1 2026-03-14T09:14:01.003Z web-1 sshd 3110 - [meta sequenceId=\"1\" x=\"a\\]b\"] Failed password for root from 203.0.113.7 port 22 ssh2",
    "<86>1 2026-03-14T09:14:01Z web-1 - - - - \u{feff}Invalid user oracle from 61.248.122.54 port 13502",
    "2026-03-14T09:14:01.123456+00:00 web-1 sudo[77]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
    "2026-03-14 09:14:01.123456+0000 web-1 sshd[9]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
    "2026-03-14T09:14:01 web-1 sudo[78]: mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/cat /etc/shadow",
    "Mar 14 09:14:02 web-1 useradd[500]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0",
    "Mar 14 09:14:02 web-1 groupadd[501]: group added to /etc/gshadow: name=devs",
    "Mar 14 09:14:02 web-1 usermod[502]: add 'bob' to shadow group 'sudo'",
    "Mar 14 09:14:02 web-1 passwd[503]: pam_unix(passwd:chauthtok): password changed for bob",
    "Mar 14 09:14:02 web-1 gpasswd[504]: user bob added by root to group sudo",
    "Mar 14 09:14:02 web-1 userdel[505]: delete user 'bob'",
    "Mar 14 09:14:02 web-1 groupdel[506]: group 'devs' removed",
    "Mar 14 09:14:03 web-1 sshd[3111]: Disconnecting authenticating user root 203.0.113.7 port 4242: Too many authentication failures [preauth]",
    "Mar 14 09:14:03 web-1 sshd[3111]: Received disconnect from 203.0.113.7 port 4242:11: Bye Bye [preauth]",
    "Mar 14 09:14:03 web-1 sshd[3111]: Connection closed by invalid user oracle 203.0.113.7 port 4242 [preauth]",
    "Mar 14 09:14:03 web-1 sshd[3111]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
    "Mar 14 09:14:03 web-1 sshd[3111]: User root from 203.0.113.8 not allowed because not listed in AllowUsers",
    "Mar 14 09:14:03 web-1 sshd[3111]: error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.7 port 4242 ssh2 [preauth]",
    "Mar 14 09:14:03 web-1 sshd[3111]: ROOT LOGIN REFUSED FROM 203.0.113.7 port 4242",
    "Mar 14 09:14:03 web-1 su[9]: FAILED SU (to root) mallory on pts/1",
    "Mar 14 09:14:03 web-1 su[9]: pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)",
    "Mar 14 09:14:03 web-1 kernel: [12345.678901] eth0: link up",
];

/// Every line of the golden corpora (`pipeline/tests/golden/`): real lines of each family the normalizer reads
/// (legacy PAM, OpenSSH old and new, timestamp variants, account management, journald entries, auditd records,
/// agents' JSON documents).
static GOLDEN: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    [
        include_str!("../../tests/golden/account_mgmt.log"),
        include_str!("../../tests/golden/agent_json.jsonl"),
        include_str!("../../tests/golden/auditd.log"),
        include_str!("../../tests/golden/journald.jsonl"),
        include_str!("../../tests/golden/legacy_pam.log"),
        include_str!("../../tests/golden/openssh_legacy.log"),
        include_str!("../../tests/golden/openssh_modern.log"),
        include_str!("../../tests/golden/timestamps.log"),
    ]
    .iter()
    .flat_map(|text| text.lines())
    .filter(|l| !l.trim().is_empty())
    .collect()
});

/// The auditd records of the golden corpus.
static AUDIT_RECORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("../../tests/golden/auditd.log")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
});

/// The journald entries of the golden corpus.
static JOURNAL_ENTRIES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("../../tests/golden/journald.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect()
});

/// Documents as shippers (rsyslog's JSON templates, Vector, Filebeat) and ECS producers send them.
const DOCUMENTS: &[&str] = &[
    r#"{"tenant":"acme","host":"db-1","message":"2026-03-14T09:14:10Z db-1 sshd[9]: Accepted password for bob from 198.51.100.4 port 22 ssh2"}"#,
    r#"{"@timestamp":"2026-03-14T09:15:00Z","organization":{"id":"globex"},"host":{"name":"db-2"},"process":{"name":"sudo","pid":77},"message":"eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"}"#,
    r#"{"timestamp":"2026-03-14T09:14:01.123456+00:00","host":"web-1","programname":"sshd","procid":"3110","msg":" Failed password for root from 203.0.113.7 port 40101 ssh2"}"#,
    r#"{"@timestamp":"2026-03-14T09:14:01.5+01:00","event.original":"Mar 14 09:14:01 h su: FAILED SU (to root) m on pts/1","host.name":"h","process.pid":"12"}"#,
];

/// The message part of the lines above, with `{user}` where a client-chosen name goes.
const AUTH_MESSAGES: &[(&str, &str)] = &[
    ("sshd", "Failed password for {user} from 203.0.113.7 port 40101 ssh2"),
    ("sshd", "Failed password for invalid user {user} from 203.0.113.7 port 40101 ssh2"),
    ("sshd-session", "Accepted keyboard-interactive/pam for {user} from 10.0.0.5 port 22 ssh2"),
    ("sshd", "Invalid user {user} from 61.248.122.54 port 13502"),
    ("sshd", "error: maximum authentication attempts exceeded for invalid user {user} from 203.0.113.7 port 4242 ssh2 [preauth]"),
    ("sshd", "Disconnecting invalid user {user} 203.0.113.7 port 4242: Too many authentication failures [preauth]"),
    ("sshd", "Disconnected from authenticating user {user} 203.0.113.7 port 4242 [preauth]"),
    ("sshd", "Connection closed by invalid user {user} 203.0.113.7 port 4242 [preauth]"),
    ("sshd", "Connection reset by 203.0.113.7 port 4242 [preauth]"),
    ("sshd", "Received disconnect from 203.0.113.7 port 4242:11: Bye Bye [preauth]"),
    ("sshd", "User {user} from 203.0.113.8 not allowed because not listed in AllowUsers"),
    ("sshd", "ROOT LOGIN REFUSED FROM 203.0.113.7 port 4242"),
    ("sshd", "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user={user}"),
    ("sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user={user}"),
    ("sshd", "pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)"),
    ("sshd", "pam_unix(sshd:session): session closed for user {user}"),
    ("", "pam_unix(sudo:auth): auth could not identify password for [{user}]"),
    ("sudo", "   {user} : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update"),
    ("sudo", "{user} : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash"),
    ("sudo", "{user} : command not allowed ; TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"),
    ("su", "(to root) {user} on pts/0"),
    ("su", "FAILED SU (to root) {user} on pts/1"),
    ("su", "+ pts/0 {user}:root"),
    ("su", "pam_unix(su:auth): authentication failure; logname={user} uid=1001 euid=0 tty=pts/1 ruser={user} rhost=  user=root"),
    ("useradd", "new user: name={user}, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0"),
    ("useradd", "new group: name={user}, GID=1001"),
    ("useradd", "failed adding user '{user}', data deleted"),
    ("usermod", "add '{user}' to group 'sudo'"),
    ("usermod", "change user '{user}' password"),
    ("usermod", "lock user '{user}' password"),
    ("passwd", "password for '{user}' changed by 'root'"),
    ("gpasswd", "user {user} added by root to group sudo"),
    ("userdel", "delete user '{user}'"),
    ("groupdel", "removed group '{user}' owned by 'root'"),
    ("chpasswd", "pam_unix(chpasswd:chauthtok): password changed for {user}"),
];

/// Program names the classifier dispatches on, and a few it does not know.
const PROGRAMS: &[&str] = &[
    "sshd",
    "sshd-session",
    "sudo",
    "su",
    "useradd",
    "usermod",
    "groupadd",
    "userdel",
    "groupdel",
    "groupmod",
    "gpasswd",
    "passwd",
    "chpasswd",
    "",
    "kernel",
    "é",
];

/// One change to a line.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (position mod length) with this one.
    Replace(usize, u8),
    /// Insert this text at (position mod length + 1).
    Insert(usize, String),
    /// Cut the line at (position mod length + 1).
    Truncate(usize),
    /// Replace the run of digits at or after (position mod length) with this number.
    Number(usize, String),
    /// Remove up to this many bytes at (position mod length).
    Remove(usize, usize),
}

/// Text that parsers treat specially, characters of every UTF-8 length, and controls.
fn piece() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "é",
        "名",
        "🦀",
        "\u{10ffff}",
        "\u{feff}",
        "\u{fffd}",
        "\u{202e}",
        " from ",
        " port ",
        " for ",
        "invalid user ",
        " : ",
        " ; ",
        "COMMAND=",
        "USER=",
        "user=",
        "rhost=",
        "(uid=0)",
        " by ",
        "[",
        "]",
        "\\",
        "\"",
        "'",
        "<",
        ">",
        ":",
        "-",
        "+",
        "{",
        "}",
        "=",
        ",",
        " ",
        "  ",
        "\t",
        "\r",
        "\n",
        "\0",
        "\x1b[2J",
        "pam_unix(",
        "): ",
        "Z",
        "T",
        ".",
        "\u{85}",
    ]);
    prop_oneof![
        special.prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
        vec(any::<char>(), 0..8).prop_map(String::from_iter),
    ]
}

/// Numbers at and past the edges of what fields hold.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "00",
            "60",
            "99",
            "9999",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551616",
            "99999999999999999999999999999999",
            "-1",
            "-9223372036854775808",
            "1e308",
            "-0",
            "1.5",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        3 => (any::<usize>(), piece()).prop_map(|(at, s)| Mutation::Insert(at, s)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), number()).prop_map(|(at, n)| Mutation::Number(at, n)),
        1 => (any::<usize>(), 1..8usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
    ]
}

/// `line` with `mutations` applied in order; positions wrap around the current length.
fn mutate(line: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = line.to_vec();
    for m in mutations {
        let len = b.len();
        match m {
            Mutation::Replace(at, byte) if len > 0 => b[at % len] = *byte,
            Mutation::Replace(..) => b.push(0xff),
            Mutation::Insert(at, s) => {
                let at = at % (len + 1);
                b.splice(at..at, s.bytes());
            }
            Mutation::Truncate(at) => b.truncate(at % (len + 1)),
            Mutation::Number(at, n) => {
                let start = (at % (len + 1)..len)
                    .find(|&i| b[i].is_ascii_digit())
                    .unwrap_or(len);
                let end = (start..len)
                    .find(|&i| !b[i].is_ascii_digit())
                    .unwrap_or(len);
                b.splice(start..end, n.bytes());
            }
            Mutation::Remove(at, n) => {
                let at = at % (len + 1);
                b.drain(at..(at + n).min(len));
            }
        }
    }
    b
}

/// A line from `templates`, mutated a few times (sometimes not at all).
fn near_valid(templates: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(templates), vec(mutation(), 0..6))
        .prop_map(|(line, mutations)| mutate(line.as_bytes(), &mutations))
}

/// Reference times: ordinary ones, and the ends of `i64` a hostile Kafka timestamp can reach.
fn reference_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 0..4_000_000_000_000_000i64,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX]),
    ]
}

fn year_policy() -> impl Strategy<Value = YearPolicy> {
    prop_oneof![
        Just(YearPolicy::Infer),
        (1970..2100i32).prop_map(YearPolicy::Fixed),
        any::<i32>().prop_map(YearPolicy::Fixed),
    ]
}

/// A JSON value as shippers send them, or nested and odd: the fields Sentra reads, with any type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        near_valid(LINES).prop_map(|b| Value::String(String::from_utf8_lossy(&b).into_owned())),
        prop::sample::select(vec![
            "2026-03-14T09:14:01Z",
            "2026-03-14 09:14:01.123456789-05:00",
            "2026-02-31T25:61:61Z",
            "9999-12-31T23:59:60.999999+23:59",
            "0000-01-01T00:00:00-23:59",
            "acme",
            "../../etc",
            "",
            "4294967296",
            "sshd",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((json_key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The keys Sentra looks up, and a few it does not.
fn json_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "tenant",
        "organization",
        "organization.id",
        "id",
        "message",
        "msg",
        "log",
        "event",
        "event.original",
        "original",
        "@timestamp",
        "timestamp",
        "time",
        "host",
        "host.name",
        "name",
        "hostname",
        "process",
        "process.name",
        "process.pid",
        "pid",
        "procid",
        "ident",
        "appname",
        "app_name",
        "programname",
        "program",
        "MESSAGE",
        "_HOSTNAME",
        "SYSLOG_IDENTIFIER",
        "_COMM",
        "_PID",
        "SYSLOG_PID",
        "__REALTIME_TIMESTAMP",
        "_SOURCE_REALTIME_TIMESTAMP",
        "log.syslog.appname",
        "syslog.identifier",
        "host.hostname",
        "date",
        "tag",
        "é",
        "",
    ])
    .prop_map(str::to_owned)
}

/// A whole JSON document: a shipper's with its fields replaced, a generated object, or deeply nested.
fn json_document() -> impl Strategy<Value = Vec<u8>> {
    let shipper = (
        prop::sample::select(DOCUMENTS),
        vec((json_key(), json_value()), 0..4),
    )
        .prop_map(|(doc, fields)| {
            let mut v: Map<String, Value> = serde_json::from_str(doc).expect("valid template");
            v.extend(fields);
            serde_json::to_vec(&v).expect("serializes")
        });
    let generated = vec((json_key(), json_value()), 0..8).prop_map(|kv| {
        serde_json::to_vec(&Value::Object(kv.into_iter().collect())).expect("serializes")
    });
    let nested = (1..400usize).prop_map(|depth| {
        let mut s = "{\"message\":".repeat(depth);
        s.push_str("\"x\"");
        s.push_str(&"}".repeat(depth));
        s.into_bytes()
    });
    let doc = prop_oneof![3 => shipper, 2 => generated, 1 => nested];
    (doc, vec(mutation(), 0..3)).prop_map(|(doc, mutations)| mutate(&doc, &mutations))
}

/// A normalizer with any year policy and sometimes a zone with daylight saving time.
fn normalizer(year: YearPolicy, zoned: bool, tenant_from_host: bool) -> Normalizer {
    let zones = if zoned {
        Zones::new("Europe/Berlin", &Default::default()).expect("known zone")
    } else {
        Zones::default()
    };
    Normalizer::new(NormalizeConfig {
        year,
        zones,
        tenant_from_host,
        ..NormalizeConfig::default()
    })
}

/// Normalizes `bytes` and checks what must hold whatever the input: no parser panicked (which the guard
/// would turn into `internal_error`), and an event keeps every byte of its line and an id of those bytes.
fn check_normalizes(
    n: &mut Normalizer,
    bytes: &[u8],
    header_tenant: Option<&[u8]>,
    reference_us: i64,
    read_us: Option<i64>,
) -> Result<(), TestCaseError> {
    let input = Input {
        bytes,
        source: "fuzz.log:1",
        header_tenant,
        fallback_tenant: Some("acme"),
        pinned_tenant: None,
        reference_us,
        reference_is_event_time: true,
        read_us,
    };
    match n.normalize(&input) {
        Ok(e) => {
            let line = bytes
                .iter()
                .rposition(|&b| b != b'\n' && b != b'\r')
                .map_or(&bytes[..0], |end| &bytes[..=end]);
            let kept = match std::str::from_utf8(bytes) {
                Ok(_) => e.original.as_bytes().to_vec(),
                Err(_) => sentra_schemas::decode_escaped(&e.original).expect("escaped form"),
            };
            prop_assert_eq!(kept.as_slice(), line);
            let id = sentra_schemas::event_id(e.tenant.as_str(), bytes, "fuzz.log:1");
            prop_assert_eq!(e.id, id);
        }
        Err(q) => {
            prop_assert_ne!(q.reason, QuarantineReason::InternalError, "{}", q.detail);
            prop_assert_eq!(q.original.as_slice(), bytes);
        }
    }
    Ok(())
}

/// Whether `part` lies inside `whole` (a field borrowed from the line, not made up), or is one of the values
/// a parser supplies itself: empty (RFC 5424's nil `-`) or `root` (sshd's `ROOT LOGIN REFUSED`, sudo's
/// default target).
fn borrowed_from(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    (p >= w && p + part.len() <= w + whole.len()) || part.is_empty() || part == "root"
}

proptest! {
    #[test]
    fn fuzz_syslog_never_panics(
        line in near_valid(LINES),
        year in year_policy(),
        reference_us in reference_time(),
    ) {
        let text = String::from_utf8_lossy(&line);
        let mut years = YearResolver::new(year);
        if let Some(l) = syslog::parse(&text, &mut years, reference_us) {
            for field in [l.host, l.program, l.message] {
                prop_assert!(borrowed_from(field, &text), "{field:?} is not from {text:?}");
            }
        }
    }

    #[test]
    fn fuzz_normalizer_never_panics_on_lines(
        line in near_valid(LINES),
        year in year_policy(),
        zoned in any::<bool>(),
        tenant_from_host in any::<bool>(),
        header in prop::option::of(near_valid(&["acme", "globex", "../../etc"])),
        reference_us in reference_time(),
        read_us in prop::option::of(reference_time()),
    ) {
        let mut n = normalizer(year, zoned, tenant_from_host);
        check_normalizes(&mut n, &line, header.as_deref(), reference_us, read_us)?;
    }

    #[test]
    fn fuzz_json_documents_never_panic(
        doc in json_document(),
        zoned in any::<bool>(),
        reference_us in reference_time(),
        read_us in prop::option::of(reference_time()),
    ) {
        let mut n = normalizer(YearPolicy::Infer, zoned, false);
        check_normalizes(&mut n, &doc, None, reference_us, read_us)?;
    }

    #[test]
    fn fuzz_auth_classify_never_panics(
        template in prop::sample::select(AUTH_MESSAGES),
        program in prop::sample::select(PROGRAMS),
        user in vec(piece(), 0..5).prop_map(String::from_iter),
        mutations in vec(mutation(), 0..4),
    ) {
        let (own_program, message) = template;
        let message = message.replace("{user}", &user);
        let message = String::from_utf8_lossy(&mutate(message.as_bytes(), &mutations)).into_owned();
        for program in [own_program, program] {
            if let Some(c) = auth::classify(program, &message) {
                let fields = [c.user, c.target_user, c.group, c.source_ip, c.auth_method, c.command];
                for field in fields.into_iter().flatten() {
                    prop_assert!(borrowed_from(field, &message), "{field:?} is not from {message:?}");
                }
                // The source is an address as logged: an IP, or a host name when sshd or PAM logged one.
                if let Some(address) = c.source_ip {
                    prop_assert_eq!(auth::valid_address(address), Some(address));
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn fuzz_golden_families_never_panic(
        line in near_valid(&GOLDEN),
        year in year_policy(),
        zoned in any::<bool>(),
        reference_us in reference_time(),
        read_us in prop::option::of(reference_time()),
    ) {
        let mut n = normalizer(year, zoned, false);
        check_normalizes(&mut n, &line, None, reference_us, read_us)?;
    }

    #[test]
    fn fuzz_auditd_never_panics(line in near_valid(&AUDIT_RECORDS)) {
        let text = String::from_utf8_lossy(&line);
        if let Some(record) = auditd::parse_record(&text) {
            let decoded = auditd::decode(&record);
            let _ = (auditd::program(&record), auditd::pid(&record));
            if let Some(c) = auditd::classify(&record, &decoded) {
                if let Some(address) = c.source_ip {
                    prop_assert_eq!(auth::valid_address(address), Some(address));
                }
            }
        }
    }

    #[test]
    fn fuzz_journald_never_panics(
        entry in prop::sample::select(JOURNAL_ENTRIES.as_slice()),
        fields in vec((json_key(), json_value()), 0..4),
        bytes in vec(any::<u64>(), 0..40),
    ) {
        let mut v: Map<String, Value> = serde_json::from_str(entry).expect("valid template");
        v.extend(fields);
        // The journal writes a message that is not UTF-8 as an array of numbers, any of them out of range.
        if bytes.len() % 3 == 0 {
            v.insert("MESSAGE".into(), Value::Array(bytes.into_iter().map(Value::from).collect()));
        }
        let v = Value::Object(v);
        if let Some(e) = journald::journal_entry(&v) {
            prop_assert!(e.message.len() <= serde_json::to_string(&v).expect("serializes").len() * 4);
        }
    }
}

/// Every input in `pipeline/tests/fuzz-regressions/*.txt` (one per line, bytes written as by
/// `escape_invalid_utf8` plus `\xNN` for any byte; `#` starts a comment), through the parser it crashed.
#[test]
fn inputs_that_once_crashed_a_parser_do_not() {
    let corpus = |text: &'static str| {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| sentra_schemas::decode_escaped(l).unwrap_or_else(|| panic!("bad entry {l:?}")))
            .collect::<Vec<_>>()
    };
    let syslog = corpus(include_str!("../../tests/fuzz-regressions/syslog.txt"));
    assert!(!syslog.is_empty());
    for line in &syslog {
        for reference_us in [0, i64::MIN, i64::MAX] {
            let text = String::from_utf8_lossy(line);
            syslog::parse(
                &text,
                &mut YearResolver::new(YearPolicy::Infer),
                reference_us,
            );
            let mut n = normalizer(YearPolicy::Infer, true, true);
            check_normalizes(&mut n, line, None, reference_us, Some(reference_us))
                .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
    }
}
