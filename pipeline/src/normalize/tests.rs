//! Every line kind the issue lists, in all three timestamp formats, plus the quarantine paths.

use super::*;
use sentra_schemas::{Category, Outcome};

const MAR14_0100: i64 = 1_773_450_000_000_000; // 2026-03-14T01:00:00Z

fn normalizer() -> Normalizer {
    Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    })
}

fn input<'a>(bytes: &'a [u8]) -> Input<'a> {
    Input {
        bytes,
        source: "test.log:1",
        header_tenant: None,
        fallback_tenant: Some("acme"),
        pinned_tenant: None,
        reference_us: 0,
        reference_is_event_time: false,
        read_us: None,
    }
}

/// (program, message, category, action, outcome, user, target, group, ip, port, method, command)
type Case = (
    &'static str,
    &'static str,
    Category,
    &'static str,
    Outcome,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<u16>,
    Option<&'static str>,
    Option<&'static str>,
);

use Category::{Authentication, Iam, Process, Session};
use Outcome::{Failure, Success};
const UNK: Outcome = Outcome::Unknown;

const CASES: &[Case] = &[
    ("sshd", "Failed password for root from 203.0.113.7 port 51234 ssh2", Authentication, "ssh_login", Failure, Some("root"), None, None, Some("203.0.113.7"), Some(51234), Some("password"), None),
    ("sshd", "Failed password for invalid user oracle from 45.1.1.1 port 7164 ssh2", Authentication, "ssh_invalid_user_login", Failure, Some("oracle"), None, None, Some("45.1.1.1"), Some(7164), Some("password"), None),
    ("sshd", "Failed publickey for alice from 2001:db8::7 port 22 ssh2: ED25519 SHA256:abc", Authentication, "ssh_login", Failure, Some("alice"), None, None, Some("2001:db8::7"), Some(22), Some("publickey"), None),
    ("sshd", "Accepted password for alice from 198.51.100.4 port 50000 ssh2", Authentication, "ssh_login", Success, Some("alice"), None, None, Some("198.51.100.4"), Some(50000), Some("password"), None),
    ("sshd", "Accepted publickey for deploy from 10.0.0.5 port 40000 ssh2: RSA SHA256:fU7wicpHdEoziIbob/y6S", Authentication, "ssh_login", Success, Some("deploy"), None, None, Some("10.0.0.5"), Some(40000), Some("publickey"), None),
    ("sshd", "Invalid user admin from 61.248.122.54 port 13502", Authentication, "ssh_invalid_user", Failure, Some("admin"), None, None, Some("61.248.122.54"), Some(13502), None, None),
    ("sshd", "error: maximum authentication attempts exceeded for root from 203.0.113.7 port 4242 ssh2 [preauth]", Authentication, "ssh_max_auth_attempts", Failure, Some("root"), None, None, Some("203.0.113.7"), Some(4242), None, None),
    ("sshd", "Disconnecting authenticating user root 203.0.113.7 port 4242: Too many authentication failures [preauth]", Authentication, "ssh_max_auth_attempts", Failure, Some("root"), None, None, Some("203.0.113.7"), Some(4242), None, None),
    ("sshd", "Received disconnect from 203.0.113.7 port 4242:11: Bye Bye [preauth]", Session, "ssh_disconnect", UNK, None, None, None, Some("203.0.113.7"), Some(4242), None, None),
    ("sshd", "Disconnected from user alice 198.51.100.4 port 50000", Session, "ssh_disconnect", UNK, Some("alice"), None, None, Some("198.51.100.4"), Some(50000), None, None),
    ("sshd", "Connection closed by authenticating user root 203.0.113.7 port 4242 [preauth]", Session, "ssh_connection_closed", UNK, Some("root"), None, None, Some("203.0.113.7"), Some(4242), None, None),
    ("sshd", "Connection closed by 203.0.113.9 port 1234 [preauth]", Session, "ssh_connection_closed", UNK, None, None, None, Some("203.0.113.9"), Some(1234), None, None),
    ("sshd", "User bob from 203.0.113.8 not allowed because not listed in AllowUsers", Authentication, "ssh_login_not_allowed", Failure, Some("bob"), None, None, Some("203.0.113.8"), None, None, None),
    ("sshd", "User root from 203.0.113.8 not allowed because none of user's groups are listed in AllowGroups", Authentication, "ssh_login_not_allowed", Failure, Some("root"), None, None, Some("203.0.113.8"), None, None, None),
    ("sshd", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root", Authentication, "ssh_pam_auth_failure", Failure, Some("root"), None, None, Some("203.0.113.7"), None, None, None),
    ("sshd", "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)", Session, "session_opened", Success, Some("alice"), None, None, None, None, None, None),
    ("sshd", "pam_unix(sshd:session): session closed for user alice", Session, "session_closed", Success, Some("alice"), None, None, None, None, None, None),
    ("sudo", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update", Process, "sudo_command", Success, Some("alice"), Some("root"), None, None, None, None, Some("/usr/bin/apt update")),
    ("sudo", "mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/mallory ; USER=root ; COMMAND=/bin/cat /etc/shadow", Authentication, "sudo_not_in_sudoers", Failure, Some("mallory"), Some("root"), None, None, None, None, Some("/bin/cat /etc/shadow")),
    ("sudo", "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash", Authentication, "sudo_incorrect_password", Failure, Some("alice"), Some("root"), None, None, None, None, Some("/bin/bash")),
    ("sudo", "pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice", Authentication, "sudo_auth_failure", Failure, Some("alice"), None, None, None, None, None, None),
    ("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)", Session, "session_opened", Success, Some("alice"), Some("root"), None, None, None, None, None),
    ("su", "(to root) alice on pts/0", Authentication, "su_success", Success, Some("alice"), Some("root"), None, None, None, None, None),
    ("su", "FAILED SU (to root) mallory on pts/1", Authentication, "su_failure", Failure, Some("mallory"), Some("root"), None, None, None, None, None),
    ("su", "pam_unix(su:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=pts/1 ruser=mallory rhost=  user=root", Authentication, "su_auth_failure", Failure, Some("mallory"), Some("root"), None, None, None, None, None),
    ("su", "pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)", Session, "session_opened", Success, Some("alice"), Some("root"), None, None, None, None, None),
    ("useradd", "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0", Iam, "user_created", Success, None, Some("bob"), None, None, None, None, None),
    ("useradd", "new group: name=bob, GID=1001", Iam, "group_created", Success, None, None, Some("bob"), None, None, None, None),
    ("usermod", "add 'bob' to group 'sudo'", Iam, "user_added_to_group", Success, None, Some("bob"), Some("sudo"), None, None, None, None),
    ("usermod", "add 'bob' to shadow group 'sudo'", Iam, "user_added_to_shadow_group", Success, None, Some("bob"), Some("sudo"), None, None, None, None),
    ("groupadd", "group added to /etc/group: name=devs, GID=1002", Iam, "group_file_updated", Success, None, None, Some("devs"), None, None, None, None),
    ("passwd", "pam_unix(passwd:chauthtok): password changed for root", Iam, "password_changed", Success, None, Some("root"), None, None, None, None, None),
    ("chpasswd", "pam_unix(chpasswd:chauthtok): password changed for bob", Iam, "password_changed", Success, None, Some("bob"), None, None, None, None, None),
    ("kernel", "eth0: link up", Category::Unknown, "unknown", Outcome::Unknown, None, None, None, None, None, None, None),
];

#[test]
fn every_line_kind_in_every_timestamp_format() {
    for (program, msg, category, action, outcome, user, target, group, ip, port, method, command) in
        CASES
    {
        for line in [
            format!("Mar 14 01:00:00 web-1 {program}[4242]: {msg}"),
            format!("<38>1 2026-03-14T01:00:00.000000Z web-1 {program} 4242 - - {msg}"),
            format!("2026-03-14 02:00:00.000000+0100 web-1 {program}[4242]: {msg}"),
            format!("2026-03-14T01:00:00+00:00 web-1 {program}[4242]: {msg}"),
        ] {
            let e = normalizer()
                .normalize(&input(line.as_bytes()))
                .unwrap_or_else(|q| panic!("{line}: {q:?}"));
            let ctx = &line;
            assert_eq!(e.timestamp_us, MAR14_0100, "{ctx}");
            assert_eq!(
                (e.host.as_str(), e.process_name.as_str(), e.process_pid),
                ("web-1", *program, Some(4242)),
                "{ctx}"
            );
            assert_eq!(
                (e.category, e.action.as_str(), e.outcome),
                (*category, *action, *outcome),
                "{ctx}"
            );
            assert_eq!(e.user.as_deref(), *user, "{ctx}");
            assert_eq!(e.target_user.as_deref(), *target, "{ctx}");
            assert_eq!(e.group.as_deref(), *group, "{ctx}");
            assert_eq!(e.source_ip.as_deref(), *ip, "{ctx}");
            assert_eq!(e.source_port, *port, "{ctx}");
            assert_eq!(e.auth_method.as_deref(), *method, "{ctx}");
            assert_eq!(e.command.as_deref(), *command, "{ctx}");
            assert_eq!(e.message, *msg, "{ctx}");
            assert_eq!(e.tenant.as_str(), "acme");
            let expected_dataset = if *category == Category::Unknown {
                "system.syslog"
            } else {
                "system.auth"
            };
            assert_eq!(e.dataset, expected_dataset, "{ctx}");
        }
    }
}

#[test]
fn hostile_user_name_cannot_spoof_the_source_ip() {
    let line = b"Mar 14 01:00:00 h sshd[1]: Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 203.0.113.7 port 22 ssh2";
    let e = normalizer().normalize(&input(line)).unwrap();
    assert_eq!(e.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(e.user.as_deref(), Some("x from 6.6.6.6 port 1 ssh2"));
}

#[test]
fn ecs_json_has_the_promised_fields() {
    let line =
        b"Mar 14 01:00:00 web-1 sshd[7]: Failed password for root from 203.0.113.7 port 22 ssh2";
    let e = normalizer().normalize(&input(line)).unwrap();
    let j = e.to_ecs_json();
    assert_eq!(j["@timestamp"], "2026-03-14T01:00:00.000000Z");
    assert_eq!(j["organization"]["id"], "acme");
    assert_eq!(j["host"]["name"], "web-1");
    assert_eq!(j["process"]["name"], "sshd");
    assert_eq!(j["process"]["pid"], 7);
    assert_eq!(j["event"]["category"], "authentication");
    assert_eq!(j["event"]["action"], "ssh_login");
    assert_eq!(j["event"]["outcome"], "failure");
    assert_eq!(j["event"]["id"], e.id);
    assert_eq!(j["user"]["name"], "root");
    assert_eq!(j["source"]["ip"], "203.0.113.7");
    assert_eq!(j["source"]["port"], 22);
    assert_eq!(j["related"]["ip"][0], "203.0.113.7");
    assert_eq!(j["related"]["user"][0], "root");
    assert_eq!(j["event"]["original"], std::str::from_utf8(line).unwrap());
}

#[test]
fn event_id_is_stable_across_runs_and_changes_with_position() {
    let line = b"Mar 14 01:00:00 web-1 sshd[7]: Accepted password for a from 1.2.3.4 port 22 ssh2";
    let a = normalizer().normalize(&input(line)).unwrap().id;
    assert_eq!(a, normalizer().normalize(&input(line)).unwrap().id);
    let mut other = input(line);
    other.source = "test.log:2";
    assert_ne!(a, normalizer().normalize(&other).unwrap().id);
}

#[test]
fn json_shipper_objects_and_ecs_documents() {
    let mut n = normalizer();
    let fluent = br#"{"tenant":"globex","host":"db-1","timestamp":"2026-03-14T01:00:00Z","message":"Mar 14 01:00:00 db-1 sshd[9]: Invalid user x from 1.2.3.4 port 5"}"#;
    let e = n.normalize(&input(fluent)).unwrap();
    assert_eq!(
        (e.tenant.as_str(), e.host.as_str(), e.action.as_str()),
        ("globex", "db-1", "ssh_invalid_user")
    );
    let vector = br#"{"tenant":"globex","hostname":"db-2","appname":"sudo","procid":"77","timestamp":"2026-03-14T01:00:00Z","message":"bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"}"#;
    let e = n.normalize(&input(vector)).unwrap();
    assert_eq!(
        (e.host.as_str(), e.process_name.as_str(), e.process_pid),
        ("db-2", "sudo", Some(77))
    );
    assert_eq!(
        (e.action.as_str(), e.timestamp_us),
        ("sudo_not_in_sudoers", MAR14_0100)
    );
    let ecs = br#"{"@timestamp":"2026-03-14T01:00:00Z","organization":{"id":"initech"},"host":{"name":"h"},"process":{"name":"su","pid":3},"message":"FAILED SU (to root) eve on pts/0"}"#;
    let e = n.normalize(&input(ecs)).unwrap();
    assert_eq!(
        (e.tenant.as_str(), e.action.as_str(), e.process_pid),
        ("initech", "su_failure", Some(3))
    );
}

#[test]
fn tenant_precedence_header_then_document_then_fallback() {
    let doc = br#"{"tenant":"globex","message":"Mar 14 01:00:00 h sshd[1]: Connection closed by 1.2.3.4 port 1"}"#;
    let mut i = input(doc);
    i.header_tenant = Some(b"initech");
    assert_eq!(
        normalizer().normalize(&i).unwrap().tenant.as_str(),
        "initech"
    );
    i.header_tenant = None;
    assert_eq!(
        normalizer().normalize(&i).unwrap().tenant.as_str(),
        "globex"
    );
    let raw = b"Mar 14 01:00:00 h sshd[1]: Connection closed by 1.2.3.4 port 1";
    assert_eq!(
        normalizer().normalize(&input(raw)).unwrap().tenant.as_str(),
        "acme"
    );
}

fn reason(r: Result<Event, Box<Quarantined>>) -> QuarantineReason {
    r.expect_err("should be quarantined").reason
}

#[test]
fn bad_input_is_quarantined_with_reason_and_original_bytes() {
    let raw = b"Mar 14 01:00:00 h sshd[1]: Connection closed by 1.2.3.4 port 1";
    let mut n = normalizer();
    let mut i = input(raw);
    i.fallback_tenant = None;
    assert_eq!(reason(n.normalize(&i)), QuarantineReason::NoTenant);
    i.header_tenant = Some(b"../../etc");
    assert_eq!(reason(n.normalize(&i)), QuarantineReason::InvalidTenant);
    i.header_tenant = Some(b"\xff");
    assert_eq!(reason(n.normalize(&i)), QuarantineReason::InvalidTenant);
    assert_eq!(
        reason(n.normalize(&input(b"{\"tenant\": \"acme\", "))),
        QuarantineReason::InvalidJson
    );
    assert_eq!(
        reason(n.normalize(&input(b"[1,2]"))),
        QuarantineReason::NoTimestamp
    );
    assert_eq!(
        reason(n.normalize(&input(b"{\"tenant\":\"acme\"}"))),
        QuarantineReason::InvalidJson
    );
    assert_eq!(
        reason(n.normalize(&input(b"just some words"))),
        QuarantineReason::NoTimestamp
    );
    let mut small = Normalizer::new(NormalizeConfig {
        max_message_bytes: 10,
        ..NormalizeConfig::default()
    });
    assert_eq!(
        reason(small.normalize(&input(raw))),
        QuarantineReason::TooLarge
    );
    let mut allow = Normalizer::new(NormalizeConfig {
        allowed_tenants: Some(["globex".to_owned()].into()),
        ..NormalizeConfig::default()
    });
    let q = allow.normalize(&input(raw)).unwrap_err();
    assert_eq!(
        (q.reason, q.tenant.as_deref()),
        (QuarantineReason::UnknownTenant, Some("acme"))
    );
}

#[test]
fn an_event_dated_past_its_read_time_by_more_than_the_skew_is_quarantined_as_future() {
    let raw = b"Mar 14 01:05:01 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1";
    let at = |read_us| Input {
        read_us,
        ..input(raw)
    };
    // 01:05:01 read at 01:00:00: 301 s ahead, one past the default 300.
    let q = normalizer().normalize(&at(Some(MAR14_0100))).unwrap_err();
    assert_eq!(
        (q.reason, q.tenant.as_deref(), q.original.as_slice()),
        (QuarantineReason::Future, Some("acme"), &raw[..])
    );
    assert!(
        q.detail.contains("2026-03-14T01:05:01") && q.detail.contains("301 s past"),
        "{}",
        q.detail
    );
    // At the bound it is an event; with no read time (a preview, a test) nothing is checked.
    assert!(normalizer()
        .normalize(&at(Some(MAR14_0100 + 1_000_000)))
        .is_ok());
    assert!(normalizer().normalize(&at(None)).is_ok());
    // The bound is the setting, and a JSON document's own timestamp is held to it too.
    let mut wide = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        max_ahead_secs: 301,
        ..NormalizeConfig::default()
    });
    assert!(wide.normalize(&at(Some(MAR14_0100))).is_ok());
    let doc = br#"{"@timestamp":"2099-01-01T00:00:00Z","message":"sshd[1]: Connection closed"}"#;
    let q = wide
        .normalize(&Input {
            read_us: Some(MAR14_0100),
            ..input(doc)
        })
        .unwrap_err();
    assert_eq!(q.reason, QuarantineReason::Future);
}

#[test]
fn classic_syslog_times_are_read_in_their_tenants_zone_and_dated_ones_are_left_alone() {
    let zones = Zones::new(
        "UTC",
        &std::collections::BTreeMap::from([("acme".to_owned(), "Europe/Berlin".to_owned())]),
    )
    .unwrap();
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        zones,
        ..NormalizeConfig::default()
    });
    // Berlin is UTC+1 in March: a host writing local time wrote 02:00 at 01:00 UTC.
    let classic = b"Mar 14 02:00:00 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1";
    let live = |bytes, tenant| Input {
        read_us: Some(MAR14_0100),
        fallback_tenant: Some(tenant),
        pinned_tenant: None,
        ..input(bytes)
    };
    let e = n.normalize(&live(classic, "acme")).unwrap();
    assert_eq!(e.timestamp_us, MAR14_0100);
    // Another tenant is read in the default zone, UTC: an hour ahead of the read time, so `future`.
    let q = n.normalize(&live(classic, "initech")).unwrap_err();
    assert_eq!(q.reason, QuarantineReason::Future);
    assert!(q.detail.contains("tenants.timezone"), "{}", q.detail);
    // So is an ISO-8601 time without an offset: a wall clock too.
    let iso_local = b"2026-03-14 02:00:00.250 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1";
    assert_eq!(
        n.normalize(&live(iso_local, "acme")).unwrap().timestamp_us,
        MAR14_0100 + 250_000
    );
    // A timestamp that says its offset means what it says, whatever the tenant's zone.
    for dated in [
        &b"2026-03-14T01:00:00Z web-1 sshd[1]: Connection closed by 1.2.3.4 port 1"[..],
        b"2026-03-14T02:00:00.000000+01:00 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1",
        b"2026-03-13 20:00:00-0500 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1",
    ] {
        assert_eq!(
            n.normalize(&live(dated, "acme")).unwrap().timestamp_us,
            MAR14_0100
        );
    }
    let rfc5424 =
        b"<38>1 2026-03-14T01:00:00Z web-1 sshd 1 - - Connection closed by 1.2.3.4 port 1";
    assert_eq!(
        n.normalize(&live(rfc5424, "acme")).unwrap().timestamp_us,
        MAR14_0100
    );
}

#[test]
fn tenant_from_host_prefix_only_when_asked() {
    let raw = b"Mar 14 01:00:00 umbrella-web1 sshd[1]: Connection closed by 1.2.3.4 port 1";
    let mut i = input(raw);
    i.fallback_tenant = None;
    assert_eq!(
        reason(normalizer().normalize(&i)),
        QuarantineReason::NoTenant
    );
    let mut n = Normalizer::new(NormalizeConfig {
        tenant_from_host: true,
        ..NormalizeConfig::default()
    });
    assert_eq!(n.normalize(&i).unwrap().tenant.as_str(), "umbrella");
    i.fallback_tenant = Some("acme");
    assert_eq!(n.normalize(&i).unwrap().tenant.as_str(), "acme");
}

/// Set as an input's source, makes [`Normalizer::normalize_with`] panic inside its guard, as a parser bug would.
const INJECTED_FAULT_SOURCE: &str = "test:injected-fault";

/// Called inside the panic guard of [`Normalizer::normalize_with`] in test builds.
pub(super) fn panic_on_injected_fault(input: &Input<'_>) {
    if input.source == INJECTED_FAULT_SOURCE {
        panic!("injected fault");
    }
}

#[test]
fn a_panicking_parser_quarantines_that_input_as_internal_error_and_the_next_one_goes_on() {
    let line = b"Mar 14 01:00:00 h sshd[1]: Accepted password for a from 1.2.3.4 port 22 ssh2";
    let mut n = normalizer();
    let mut columns = EventColumns::with_capacity(2);
    let mut faulty = input(line);
    faulty.source = INJECTED_FAULT_SOURCE;
    let q = n.normalize_into(&faulty, &mut columns).unwrap_err();
    assert_eq!(
        (q.reason, q.original.as_slice(), q.source.as_str()),
        (
            QuarantineReason::InternalError,
            &line[..],
            INJECTED_FAULT_SOURCE
        )
    );
    assert!(q.detail.contains("injected fault"), "{}", q.detail);
    assert_eq!(columns.len(), 0);
    assert_eq!(n.normalize_into(&input(line), &mut columns), Ok(false));
    assert_eq!(columns.len(), 1);
}

#[test]
fn a_multi_byte_character_in_the_priority_field_is_no_timestamp_not_a_crash() {
    for line in [
        "<1é>Mar 14 01:00:00 h p: m",
        "<ééé",
        "<1234é>",
        "<\u{10ffff}>x",
        "<12345>",
    ] {
        assert_eq!(
            reason(normalizer().normalize(&input(line.as_bytes()))),
            QuarantineReason::NoTimestamp,
            "{line:?}"
        );
    }
}

#[test]
fn an_invalid_byte_in_a_user_name_is_detected_and_kept_byte_for_byte() {
    let raw = b"Mar 14 01:00:00 h sshd[1]: Failed password for invalid user ro\xffot\\ from 203.0.113.7 port 22 ssh2\n";
    let mut n = normalizer();
    let e = n.normalize(&input(raw)).unwrap();
    assert_eq!(
        (e.action.as_str(), e.user.as_deref(), e.source_ip.as_deref()),
        (
            "ssh_invalid_user_login",
            Some("ro\u{fffd}ot\\"),
            Some("203.0.113.7")
        )
    );
    assert_eq!(
        e.original,
        "Mar 14 01:00:00 h sshd[1]: Failed password for invalid user ro\\xffot\\\\ from 203.0.113.7 port 22 ssh2"
    );
    let kept = sentra_schemas::decode_escaped(&e.original).unwrap();
    assert_eq!(kept, raw.strip_suffix(b"\n").unwrap());
    assert_eq!(e.id, sentra_schemas::event_id("acme", raw, "test.log:1"));
    assert_eq!(n.lossy_utf8(), 1);
    n.normalize(&input(
        b"Mar 14 01:00:00 h sshd[1]: Connection closed by 1.2.3.4 port 1",
    ))
    .unwrap();
    assert_eq!(n.lossy_utf8(), 1);
}

#[test]
#[ignore = "a timing measurement, meaningful only in a release build: scripts/fuzz.sh runs it"]
fn the_panic_guard_costs_under_5_percent_of_normalization() {
    let sample = include_str!("../../../examples/auth.log");
    let lines: Vec<&[u8]> = sample.lines().map(str::as_bytes).collect();
    let pass = |guarded: bool| {
        let mut n = normalizer();
        let started = std::time::Instant::now();
        for _ in 0..2_000 {
            let mut columns = EventColumns::with_capacity(lines.len());
            for line in &lines {
                let input = input(line);
                let r = if guarded {
                    n.normalize_into(&input, &mut columns)
                } else {
                    n.normalize_unguarded(&input, |e| {
                        columns.append(&e);
                        e.category == "unknown"
                    })
                };
                assert!(r.is_ok());
            }
            std::hint::black_box(columns.finish());
        }
        started.elapsed().as_secs_f64()
    };
    // Alternating passes, the fastest of each: the least disturbed by whatever else the machine runs.
    let (mut guarded, mut bare) = (f64::MAX, f64::MAX);
    for _ in 0..7 {
        guarded = guarded.min(pass(true));
        bare = bare.min(pass(false));
    }
    let lines_per_pass = (lines.len() * 2_000) as f64;
    println!(
        "normalize_into with the panic guard: {:.0} ns a line; without: {:.0} ns a line; ratio {:.3}",
        guarded / lines_per_pass * 1e9,
        bare / lines_per_pass * 1e9,
        guarded / bare
    );
    assert!(guarded / bare < 1.05, "{guarded} s against {bare} s");
}

#[test]
fn a_pinned_tenant_is_authoritative_and_a_message_naming_another_is_quarantined() {
    let line = b"Mar 14 01:00:00 web-1 sshd[1]: Failed password for root from 1.2.3.4 port 1 ssh2";
    let pinned = |bytes, header| Input {
        header_tenant: header,
        fallback_tenant: None,
        pinned_tenant: Some("acme"),
        ..input(bytes)
    };
    // The topic's tenant, whether or not the message repeats it.
    for header in [None, Some(&b"acme"[..])] {
        let e = normalizer().normalize(&pinned(line, header)).unwrap();
        assert_eq!(e.tenant.as_str(), "acme");
    }
    // Naming another tenant, by header or by document, is a spoofing attempt: quarantined under the topic's
    // tenant, never stored or detected as the named one.
    let doc = br#"{"tenant":"globex","host":"web-1","message":"sshd[1]: Failed password for root from 1.2.3.4 port 1 ssh2","@timestamp":"2026-03-14T01:00:00Z"}"#;
    for (bytes, header) in [(&line[..], Some(&b"globex"[..])), (&doc[..], None)] {
        let q = normalizer().normalize(&pinned(bytes, header)).unwrap_err();
        assert_eq!(
            (q.reason, q.tenant.as_deref()),
            (QuarantineReason::TenantMismatch, Some("acme"))
        );
        assert!(q.detail.contains("\"globex\""), "{}", q.detail);
    }
    // Unpinned, the message's own tenant is taken.
    let own = Input {
        pinned_tenant: None,
        ..pinned(&doc[..], None)
    };
    assert_eq!(
        normalizer().normalize(&own).unwrap().tenant.as_str(),
        "globex"
    );
}

#[test]
fn tenants_beyond_the_limit_are_quarantined_and_known_ones_still_accepted() {
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        max_tenants: Some(2),
        ..NormalizeConfig::default()
    });
    let line = b"Mar 14 01:00:00 web-1 sshd[1]: Connection closed by 1.2.3.4 port 1";
    let of = |tenant| Input {
        fallback_tenant: Some(tenant),
        ..input(line)
    };
    assert!(n.normalize(&of("acme")).is_ok());
    assert!(n.normalize(&of("globex")).is_ok());
    let q = n.normalize(&of("initech")).unwrap_err();
    assert_eq!(
        (q.reason, q.tenant.as_deref()),
        (QuarantineReason::TenantLimit, Some("initech"))
    );
    assert!(q.detail.contains("tenants.max"), "{}", q.detail);
    // The tenants already admitted go on, and unlimited normalization admits any number.
    assert!(n.normalize(&of("acme")).is_ok());
    assert!(normalizer().normalize(&of("initech")).is_ok());
}
