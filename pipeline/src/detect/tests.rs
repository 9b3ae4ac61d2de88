//! Scenario tests for the built-in catalog: each detection fires on its attack pattern with the right MITRE
//! technique and risk band, stays silent on benign look-alikes, and results do not depend on batching,
//! restarts or (within lateness) arrival order.

use std::collections::BTreeMap;

use arrow::array::AsArray;
use sentra_schemas::{EventColumns, Severity, Signal};

use super::*;
use crate::normalize::{Input, NormalizeConfig, Normalizer, YearPolicy};

/// `Mar 16 2026` (a Monday) at 10:00 + `secs`, as a classic syslog stamp.
fn at(secs: u32) -> String {
    let s = 10 * 3600 + secs;
    format!("Mar 16 {:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn line(secs: u32, host: &str, prog: &str, msg: &str) -> String {
    format!("{} {host} {prog}: {msg}", at(secs))
}

fn batches(lines: &[String], size: usize) -> Vec<arrow::array::RecordBatch> {
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    let mut cols = EventColumns::default();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let src = format!("t:{i}");
        let input = Input {
            bytes: l.as_bytes(),
            source: &src,
            header_tenant: None,
            fallback_tenant: Some("acme"),
            reference_us: 0,
            reference_is_event_time: false,
            read_us: None,
        };
        n.normalize_into(&input, &mut cols).unwrap();
        if cols.len() == size {
            out.push(cols.finish());
        }
    }
    if !cols.is_empty() {
        out.push(cols.finish());
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// An engine running `detections`.
fn engine_with(detections: Vec<Detection>) -> (tokio::runtime::Runtime, Engine) {
    let rt = runtime();
    let e = rt
        .block_on(Engine::new(detections, EngineConfig::default()))
        .unwrap();
    (rt, e)
}

fn engine() -> (tokio::runtime::Runtime, Engine) {
    engine_with(catalog::builtin())
}

/// The signals of `detections` on `lines`, fed in batches of `size`, then end of input.
fn run_with(detections: Vec<Detection>, lines: &[String], size: usize) -> Vec<Signal> {
    let (rt, mut e) = engine_with(detections);
    let mut out = Vec::new();
    for b in batches(lines, size) {
        out.extend(rt.block_on(e.process(&b)).unwrap().signals);
    }
    out.extend(e.finish());
    out
}

fn run_sized(lines: &[String], size: usize) -> Vec<Signal> {
    run_with(catalog::builtin(), lines, size)
}

fn run(lines: &[String]) -> Vec<Signal> {
    run_sized(lines, 1000)
}

fn only<'a>(signals: &'a [Signal], name: &str) -> &'a Signal {
    let hits: Vec<&Signal> = signals.iter().filter(|s| s.signal == name).collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one {name}, got {:#?}",
        signals.iter().map(|s| &s.signal).collect::<Vec<_>>()
    );
    hits[0]
}

/// The built-in detection `name`.
fn builtin(name: &str) -> Detection {
    catalog::builtin()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
}

fn names(signals: &[Signal]) -> Vec<&str> {
    let mut n: Vec<&str> = signals.iter().map(|s| s.signal.as_str()).collect();
    n.sort_unstable();
    n
}

fn fail(secs: u32, user: &str, ip: &str) -> String {
    line(
        secs,
        "bastion-1",
        "sshd[10]",
        &format!("Failed password for {user} from {ip} port 4000 ssh2"),
    )
}

fn accept(secs: u32, user: &str, ip: &str) -> String {
    line(
        secs,
        "bastion-1",
        "sshd[11]",
        &format!("Accepted password for {user} from {ip} port 4001 ssh2"),
    )
}

#[test]
fn brute_force() {
    let lines: Vec<String> = (0..8).map(|i| fail(i * 5, "root", "203.0.113.7")).collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_brute_force"]);
    let b = only(&s, "ssh_brute_force");
    assert_eq!(
        (
            b.mitre[0].technique.as_str(),
            b.ip.as_deref(),
            b.user.as_deref(),
            b.count
        ),
        ("T1110.001", Some("203.0.113.7"), Some("root"), 8)
    );
    assert_eq!(b.severity, Severity::High);
    assert!(b.risk_factors.iter().any(|f| f.name == "privileged_target"));
    let sum: f64 = b.risk_factors.iter().map(|f| f.contribution).sum();
    assert!(
        (sum - b.risk_score).abs() < 1e-9,
        "factors explain the score"
    );
    // One sample per (host, user) combination: its first event (the lines are 5 s apart).
    let all = batches(&lines, 100);
    let ids = all[0].column(1).as_string_view();
    assert_eq!(b.evidence, [ids.value(0)]);
}

/// `Mar 16 2026` at 10:00 + `secs`, epoch microseconds (the time [`at`] writes).
fn at_us(secs: u32) -> i64 {
    (1_773_655_200 + i64::from(secs)) * 1_000_000
}

#[test]
fn brute_force_in_legacy_pam_lines_from_a_host_name() {
    // Older RHEL wrote `sshd(pam_unix)[pid]:` with the peer's name in `rhost=`, and sshd's own
    // `Failed password` lines went to another file: these are the only record of each attempt.
    let rhost = "220-135-151-1.hinet-ip.hinet.net";
    let lines: Vec<String> = (0..6)
        .map(|i| {
            line(
                i * 5,
                "combo",
                &format!("sshd(pam_unix)[{}]", 20_882 + i),
                &format!("authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost={rhost}  user=root"),
            )
        })
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_brute_force"]);
    let b = only(&s, "ssh_brute_force");
    assert_eq!(
        (b.ip.as_deref(), b.user.as_deref(), b.count),
        (Some(rhost), Some("root"), 6)
    );
}

#[test]
fn brute_force_in_journald_json() {
    let lines: Vec<String> = (0..6)
        .map(|i| {
            serde_json::json!({
                "__REALTIME_TIMESTAMP": at_us(i * 5).to_string(),
                "_HOSTNAME": "deb12",
                "SYSLOG_IDENTIFIER": "sshd",
                "_PID": (2300 + i).to_string(),
                "MESSAGE": format!("Failed password for admin from 203.0.113.5 port {} ssh2", 50_000 + i),
            })
            .to_string()
        })
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_brute_force"]);
    let b = only(&s, "ssh_brute_force");
    assert_eq!(
        (b.ip.as_deref(), b.user.as_deref(), b.count),
        (Some("203.0.113.5"), Some("admin"), 6)
    );
}

#[test]
fn samples_name_their_own_events_when_a_late_one_is_left_out_of_the_batch() {
    // One batch: an event at 10:10, one from 10:00 (late: the host's clock is at 10:10), then the attack. The
    // plans run on the batch without the late row, so a sample must still name its own event, not its neighbour.
    let mut lines = vec![
        fail(600, "alice", "198.51.100.9"),
        fail(0, "bob", "198.51.100.8"),
    ];
    lines.extend((0..8).map(|i| fail(601 + i * 5, "root", "203.0.113.7")));
    let (rt, mut e) = engine();
    let batch = batches(&lines, 100).remove(0);
    let outcome = rt.block_on(e.process(&batch)).unwrap();
    assert_eq!(outcome.late_rows, [1]);
    let mut signals = outcome.signals;
    signals.extend(e.finish());
    let b = only(&signals, "ssh_brute_force");
    assert_eq!(b.evidence, [batch.column(1).as_string_view().value(2)]);
}

#[test]
fn samples_are_the_first_event_of_each_combination() {
    // Three users in turn, then a second host: each (host, user) combination is sampled by its first event.
    let mut lines: Vec<String> = (0..9)
        .map(|i| {
            fail(
                i * 4,
                ["root", "alice", "bob"][i as usize % 3],
                "203.0.113.7",
            )
        })
        .collect();
    lines.push(lines[0].replace("bastion-1", "bastion-2"));
    lines.sort_by_key(|l| l[..15].to_owned());
    let s = run(&lines);
    let b = only(&s, "ssh_brute_force");
    let all = batches(&lines, 100);
    let ids = all[0].column(1).as_string_view();
    let first = |host: &str, user: &str| {
        let row = lines
            .iter()
            .position(|l| l.contains(host) && l.contains(&format!("for {user} ")))
            .unwrap();
        ids.value(row).to_owned()
    };
    let mut expected = vec![
        first("bastion-1", "root"),
        first("bastion-1", "alice"),
        first("bastion-1", "bob"),
        first("bastion-2", "root"),
    ];
    let mut got = b.evidence.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
}

#[test]
fn password_spray() {
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let lines: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, u)| fail(i as u32 * 40, u, "192.0.2.44"))
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_password_spray"]);
    let p = only(&s, "ssh_password_spray");
    assert_eq!(
        (p.mitre[0].technique.as_str(), p.ip.as_deref()),
        ("T1110.003", Some("192.0.2.44"))
    );
    assert_eq!(p.severity, Severity::High);
}

#[test]
fn distributed_brute_force() {
    let lines: Vec<String> = (0..12)
        .map(|i| fail(i * 20, "oracle", &format!("198.18.0.{}", i % 6 + 1)))
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_distributed_brute_force"]);
    let d = only(&s, "ssh_distributed_brute_force");
    assert_eq!(
        (
            d.mitre[0].technique.as_str(),
            d.user.as_deref(),
            d.ip.as_deref()
        ),
        ("T1110.004", Some("oracle"), None)
    );
    assert!(d.risk_score >= 0.5);
}

#[test]
fn a_sliding_window_fires_when_a_later_pane_joins_a_quiet_one() {
    // Half the attack in the first minute, half five minutes later: only windows holding both panes fire,
    // after windows holding the first pane alone were checked and stayed quiet.
    let lines: Vec<String> = (0..12)
        .map(|i| {
            let at = if i < 6 { i * 5 } else { 300 + i * 5 };
            fail(at, "oracle", &format!("198.18.0.{}", i / 2 + 1))
        })
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_distributed_brute_force"]);
    let d = only(&s, "ssh_distributed_brute_force");
    assert_eq!(d.count, 12);
}

#[test]
fn login_after_failures_from_one_source() {
    let mut lines: Vec<String> = (0..6)
        .map(|i| fail(i * 10, "alice", "198.51.100.9"))
        .collect();
    lines.push(accept(70, "alice", "198.51.100.9"));
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_brute_force", "ssh_login_after_failures"]);
    let l = only(&s, "ssh_login_after_failures");
    let techniques: Vec<&str> = l.mitre.iter().map(|m| m.technique.as_str()).collect();
    assert_eq!(techniques, ["T1110", "T1078"]);
    assert_eq!(
        (l.user.as_deref(), l.ip.as_deref()),
        (Some("alice"), Some("198.51.100.9"))
    );
    // A source that brute-forced an account and then got in: the most serious thing the catalog says.
    assert_eq!(l.severity, Severity::Critical, "{}", l.risk_score);
    assert!(l.risk_score >= 0.8);
    let factors: Vec<&str> = l.risk_factors.iter().map(|f| f.name.as_str()).collect();
    assert!(factors.contains(&"success_after_failures"), "{factors:?}");
    assert!(factors.contains(&"brute_forced_account"), "{factors:?}");
}

#[test]
fn login_as_another_account_than_the_failures_is_high_not_critical() {
    let mut lines: Vec<String> = (0..6)
        .map(|i| fail(i * 10, "oracle", "198.51.100.9"))
        .collect();
    lines.push(accept(70, "alice", "198.51.100.9"));
    let s = run(&lines);
    let l = only(&s, "ssh_login_after_failures");
    assert_eq!(l.severity, Severity::High, "{}", l.risk_score);
    assert!(!l
        .risk_factors
        .iter()
        .any(|f| f.name == "brute_forced_account"));
}

#[test]
fn login_after_failures_for_one_account_from_many_sources() {
    let mut lines: Vec<String> = (0..6)
        .map(|i| fail(i * 30, "carol", &format!("198.18.1.{}", i % 3 + 1)))
        .collect();
    lines.push(accept(200, "carol", "198.18.9.9"));
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_account_login_after_failures"]);
    let a = only(&s, "ssh_account_login_after_failures");
    assert_eq!(
        (a.user.as_deref(), a.mitre[1].technique.as_str()),
        (Some("carol"), "T1078")
    );
    assert!(a.severity >= Severity::High);
}

#[test]
fn invalid_user_enumeration() {
    let lines: Vec<String> = ["a1", "b2", "c3", "d4", "e5", "f6"]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            line(
                i as u32 * 30,
                "web-1",
                "sshd[3]",
                &format!("Invalid user {u} from 203.0.113.50 port 5{i}"),
            )
        })
        .collect();
    let s = run(&lines);
    assert_eq!(names(&s), ["ssh_invalid_user_enumeration"]);
    let e = only(&s, "ssh_invalid_user_enumeration");
    assert_eq!(
        (e.mitre[0].technique.as_str(), e.severity),
        ("T1087.001", Severity::Medium)
    );
}

#[test]
fn direct_root_login() {
    let s = run(&[accept(0, "root", "10.1.1.1")]);
    assert_eq!(names(&s), ["ssh_root_login"]);
    let r = only(&s, "ssh_root_login");
    assert_eq!(
        (r.mitre[0].technique.as_str(), r.user.as_deref(), r.severity),
        ("T1078.003", None, Severity::Medium)
    );
    assert_eq!(r.hosts, ["bastion-1"]);
}

#[test]
fn sudo_abuse() {
    let not_in_sudoers = line(
        0,
        "web-1",
        "sudo",
        "mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
    );
    let s = run(&[not_in_sudoers]);
    let a = only(&s, "sudo_abuse");
    assert_eq!(
        (a.mitre[0].technique.as_str(), a.user.as_deref(), a.severity),
        ("T1548.003", Some("mallory"), Severity::High)
    );
    let failures: Vec<String> = (0..3)
        .map(|i| line(i * 20, "web-1", "sudo", "pam_unix(sudo:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob"))
        .collect();
    assert_eq!(names(&run(&failures)), ["sudo_abuse"]);
}

#[test]
fn su_to_root_failures() {
    let mut lines = Vec::new();
    for i in 0..2 {
        lines.push(line(i * 30, "web-1", "su[9]", "pam_unix(su:auth): authentication failure; logname=eve uid=1002 euid=0 tty=pts/0 ruser=eve rhost=  user=root"));
        lines.push(line(
            i * 30 + 2,
            "web-1",
            "su[9]",
            "FAILED SU (to root) eve on pts/0",
        ));
    }
    let s = run(&lines);
    assert_eq!(names(&s), ["su_root_failures"]);
    assert_eq!(only(&s, "su_root_failures").mitre[0].technique, "T1548");
}

#[test]
fn off_hours_follow_the_tenants_zone_with_daylight_saving_time() {
    // Monday 2026-03-16 23:30 UTC: 19:30 in New York (EDT since 8 March; 18:30 in winter time), 08:30 on
    // Tuesday in Tokyo.
    let lines = [line(
        13 * 3600 + 1800,
        "web-1",
        "useradd[1]",
        "new user: name=svc-x, UID=1010, GID=1010, home=/home/svc-x, shell=/bin/bash, from=/dev/pts/0",
    )];
    let off_hours = |config: EngineConfig| {
        let rt = runtime();
        let mut e = rt
            .block_on(Engine::new(catalog::builtin(), config))
            .unwrap();
        let mut signals = Vec::new();
        for b in batches(&lines, 100) {
            signals.extend(rt.block_on(e.process(&b)).unwrap().signals);
        }
        signals.extend(e.finish());
        let factors = &only(&signals, "new_local_account").risk_factors;
        factors
            .iter()
            .find(|f| f.name == "off_hours")
            .map(|f| f.detail.clone())
    };
    let zoned = |default: &str, acme: Option<&str>| EngineConfig {
        timezone: default.into(),
        tenant_timezones: acme
            .map(|z| BTreeMap::from([("acme".to_owned(), z.to_owned())]))
            .unwrap_or_default(),
        ..EngineConfig::default()
    };
    assert!(off_hours(EngineConfig::default()).is_some(), "23:30 UTC");
    let new_york = off_hours(zoned("America/New_York", None)).expect("19:30 in New York");
    assert!(new_york.contains("2026-03-16 19h"), "{new_york}");
    assert_eq!(off_hours(zoned("Asia/Tokyo", None)), None);
    // A tenant's own zone wins over the default.
    assert_eq!(off_hours(zoned("UTC", Some("Asia/Tokyo"))), None);
    assert_eq!(
        off_hours(zoned("Asia/Tokyo", Some("America/New_York"))),
        Some(new_york)
    );
    // The older fixed offset still works for a tenant without a zone.
    let fixed = EngineConfig {
        tenant_utc_offsets_min: BTreeMap::from([("acme".to_owned(), 540)]),
        ..EngineConfig::default()
    };
    assert_eq!(off_hours(fixed), None);
    let bad = runtime().block_on(Engine::new(catalog::builtin(), zoned("Europe/Berln", None)));
    assert!(bad.is_err_and(|e| e.to_string().contains("Europe/Berln")));
}

#[test]
fn account_changes() {
    let lines = [
        line(0, "web-1", "useradd[1]", "new user: name=svc-x, UID=1010, GID=1010, home=/home/svc-x, shell=/bin/bash, from=/dev/pts/0"),
        line(10, "web-1", "usermod[2]", "add 'svc-x' to group 'wheel'"),
        line(20, "web-1", "passwd[3]", "pam_unix(passwd:chauthtok): password changed for root"),
    ];
    let s = run(&lines);
    assert_eq!(
        names(&s),
        [
            "new_local_account",
            "privileged_group_add",
            "privileged_password_change"
        ]
    );
    let n = only(&s, "new_local_account");
    assert_eq!(
        (
            n.mitre[0].technique.as_str(),
            n.user.as_deref(),
            n.intent.as_str()
        ),
        ("T1136.001", Some("svc-x"), "Identity Management")
    );
    let g = only(&s, "privileged_group_add");
    assert_eq!(
        (g.mitre[0].technique.as_str(), g.severity),
        ("T1098", Severity::High)
    );
    assert!(g.narrative.contains("wheel"));
    let p = only(&s, "privileged_password_change");
    assert_eq!(
        (p.mitre[0].technique.as_str(), p.user.as_deref()),
        ("T1098", Some("root"))
    );
}

#[test]
fn benign_look_alikes_stay_silent() {
    let mut lines = Vec::new();
    // Routine admin sudo.
    for i in 0..20 {
        lines.push(line(
            i * 15,
            "web-1",
            "sudo",
            "deploy : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/systemctl restart app",
        ));
    }
    // One mistyped password, then success.
    lines.push(fail(100, "alice", "198.51.100.23"));
    lines.push(accept(104, "alice", "198.51.100.23"));
    // CI deploy keys, many times from one runner.
    for i in 0..50 {
        lines.push(line(
            i * 6,
            "web-2",
            "sshd[5]",
            "Accepted publickey for deploy from 10.0.0.5 port 40000 ssh2: ED25519 SHA256:abc",
        ));
    }
    // One mistyped sudo password.
    lines.push(line(200, "web-1", "sudo", "pam_unix(sudo:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob"));
    // Ordinary group and password changes.
    lines.push(line(
        250,
        "web-1",
        "usermod[2]",
        "add 'bob' to group 'developers'",
    ));
    lines.push(line(
        260,
        "web-1",
        "passwd[3]",
        "pam_unix(passwd:chauthtok): password changed for bob",
    ));
    lines.sort_by_key(|l| l[..15].to_owned());
    let s = run(&lines);
    assert!(s.is_empty(), "benign activity raised {:#?}", names(&s));
}

fn mixed_scenario() -> Vec<String> {
    let mut lines: Vec<String> = (0..40)
        .map(|i| {
            fail(
                i * 7,
                ["root", "admin", "oracle"][i as usize % 3],
                &format!("203.0.113.{}", i % 4),
            )
        })
        .collect();
    lines.extend((0..9).map(|i| fail(50 + i * 13, &format!("u{i}"), "192.0.2.44")));
    lines.push(accept(300, "root", "203.0.113.1"));
    lines.push(line(
        320,
        "web-1",
        "sudo",
        "mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/sh",
    ));
    lines.extend((0..30).map(|i| fail(900 + i * 3, "root", "203.0.113.99")));
    lines.sort_by_key(|l| l[..15].to_owned());
    lines
}

#[test]
fn results_do_not_depend_on_batching() {
    let lines = mixed_scenario();
    let one = run_sized(&lines, 1);
    assert!(one.len() >= 4, "{:?}", names(&one));
    assert_eq!(one, run_sized(&lines, 7));
    assert_eq!(one, run_sized(&lines, 10_000));
}

#[test]
fn detections_sharing_a_plan_get_what_they_would_alone() {
    let lines = mixed_scenario();
    let (rt, e) = engine();
    assert!(
        e.plan_count() < catalog::builtin().len(),
        "some share a plan"
    );
    drop((rt, e));
    let mut together = run(&lines);
    let mut apart: Vec<Signal> = catalog::builtin()
        .into_iter()
        .flat_map(|d| run_with(vec![d], &lines, 1000))
        .collect();
    let names_together = names(&together);
    assert!(
        names_together.contains(&"ssh_brute_force")
            && names_together.contains(&"ssh_password_spray"),
        "{names_together:?}"
    );
    together.sort_by(|a, b| a.id.cmp(&b.id));
    apart.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(together, apart);
}

#[test]
fn a_narrower_detection_sharing_a_plan_sees_only_its_own_groups() {
    // Sharing the plan of a broader filter, the narrower detection's values count only the rows of its own
    // filter, and a group with none of them is not its group at all: `n <= 1` would otherwise fire on every
    // source that only failed.
    let broad = builtin("ssh_login_after_failures");
    let mut narrow = broad.clone();
    narrow.name = "few_successes".into();
    narrow.filter = format!("outcome = 'success' AND ({})", broad.filter);
    narrow.aggregates.truncate(1);
    narrow.aggregates[0].name = "n".into();
    narrow.aggregates[0].sql = "count(*)".into();
    narrow.conditions = vec!["n <= 1".into()];
    let (rt, e) = engine_with(vec![broad.clone(), narrow.clone()]);
    assert_eq!(e.plan_count(), 1, "the two share one plan");
    drop((rt, e));
    let lines = mixed_scenario();
    let mut together = run_with(vec![broad.clone(), narrow.clone()], &lines, 1000);
    let mut apart = run_with(vec![broad], &lines, 1000);
    apart.extend(run_with(vec![narrow], &lines, 1000));
    assert_eq!(
        names(&apart)
            .iter()
            .filter(|&&n| n == "few_successes")
            .count(),
        1,
        "only the source that logged in"
    );
    together.sort_by(|a, b| a.id.cmp(&b.id));
    apart.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(together, apart);
}

#[test]
fn a_plan_error_names_the_detection_even_when_it_would_share_a_plan() {
    let brute = builtin("ssh_brute_force");
    let mut broken = brute.clone();
    broken.name = "broken_copy".into();
    broken.aggregates[0].sql = "sum(no_such_column)".into();
    let err = runtime()
        .block_on(Engine::new(vec![brute, broken], EngineConfig::default()))
        .err()
        .expect("the broken detection does not plan");
    let EngineError::Plan { name, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(name, "broken_copy");
}

#[test]
fn compacting_the_interner_changes_nothing() {
    // Many sources come and go, so most interned strings belong to closed windows.
    let mut lines = mixed_scenario();
    for i in 0..300u32 {
        lines.push(fail(
            4000 + i * 20,
            "admin",
            &format!("198.51.{}.{}", i / 200, i % 200),
        ));
    }
    let (rt, mut normal) = engine();
    let (_, mut compacted) = engine();
    compacted.compact_eagerly();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for batch in batches(&lines, 25) {
        a.extend(rt.block_on(normal.process(&batch)).unwrap().signals);
        b.extend(rt.block_on(compacted.process(&batch)).unwrap().signals);
    }
    assert!(compacted.interned() < normal.interned() / 2);
    assert_eq!(compacted.snapshot(), normal.snapshot());
    a.extend(normal.finish());
    b.extend(compacted.finish());
    assert!(a.len() >= 4);
    assert_eq!(a, b);
}

#[test]
fn a_restored_snapshot_continues_exactly() {
    let lines = mixed_scenario();
    let straight = run(&lines);
    let (rt, mut first) = engine();
    let all = batches(&lines, 10);
    let (head, tail) = all.split_at(all.len() / 2);
    let mut got = Vec::new();
    for b in head {
        got.extend(rt.block_on(first.process(b)).unwrap().signals);
    }
    let snapshot = serde_json::to_string(&first.snapshot()).unwrap();
    drop(first);
    let (rt, mut second) = engine();
    second.restore(serde_json::from_str(&snapshot).unwrap());
    for b in tail {
        got.extend(rt.block_on(second.process(b)).unwrap().signals);
    }
    got.extend(second.finish());
    assert_eq!(got, straight);
}

#[test]
fn out_of_order_within_lateness_counts_and_beyond_is_late() {
    // Within lateness (30 s): the 5th failure arrives 20 s after a newer event of its host and still completes
    // the window.
    // (After the tenant's first 300 s, in which its watermark waits for hosts not yet heard from.)
    let lines = vec![
        line(
            0,
            "bastion-1",
            "sshd[1]",
            "Connection closed by 10.0.0.1 port 22",
        ),
        fail(420, "root", "203.0.113.7"),
        fail(425, "root", "203.0.113.7"),
        fail(430, "root", "203.0.113.7"),
        fail(435, "root", "203.0.113.7"),
        line(
            460,
            "bastion-1",
            "sshd[1]",
            "Connection closed by 10.0.0.1 port 22",
        ),
        fail(440, "root", "203.0.113.7"),
    ];
    let s = run(&lines);
    assert_eq!(only(&s, "ssh_brute_force").count, 5);

    // Beyond lateness: the same failure 90 s behind its host's newest event is late and not counted.
    let mut late = lines.clone();
    late[5] = line(
        530,
        "bastion-1",
        "sshd[1]",
        "Connection closed by 10.0.0.1 port 22",
    );
    let (rt, mut e) = engine();
    let mut signals = Vec::new();
    let mut late_rows = Vec::new();
    for b in batches(&late, 1) {
        let o = rt.block_on(e.process(&b)).unwrap();
        signals.extend(o.signals);
        late_rows.push(o.late_rows.len());
    }
    signals.extend(e.finish());
    assert_eq!(late_rows, [0, 0, 0, 0, 0, 0, 1]);
    assert!(
        signals.iter().all(|s| s.signal != "ssh_brute_force"),
        "{:?}",
        names(&signals)
    );
}

/// Each batch's late rows and signals (then end of input's signals) for `lines` fed `size` at a time.
fn late_and_signals(lines: &[String], size: usize) -> (Vec<usize>, Vec<Vec<Signal>>) {
    let (rt, mut e) = engine();
    let (mut late, mut signals) = (Vec::new(), Vec::new());
    for b in batches(lines, size) {
        let o = rt.block_on(e.process(&b)).unwrap();
        late.push(o.late_rows.len());
        signals.push(o.signals);
    }
    signals.push(e.finish());
    (late, signals)
}

#[test]
fn a_host_whose_clock_runs_ahead_does_not_make_the_others_late() {
    // web-2's clock is 150 s ahead (within the 300 s skew allowed). Both hosts log every minute, then the
    // attack on bastion-1 comes interleaved with web-2's lines. Judged against the tenant's newest event, every
    // bastion-1 line after the first few minutes would be late.
    let closed = |secs, host| {
        line(
            secs,
            host,
            "sshd[2]",
            "Connection closed by 10.0.0.1 port 22",
        )
    };
    let mut lines = Vec::new();
    for minute in 0..10 {
        lines.push(closed(minute * 60, "bastion-1"));
        lines.push(closed(minute * 60 + 150, "web-2"));
    }
    for i in 0..6 {
        lines.push(closed(750 + i * 5, "web-2"));
        lines.push(fail(600 + i * 5, "root", "203.0.113.7"));
    }
    for size in [1, 5, 100] {
        let (late, signals) = late_and_signals(&lines, size);
        assert_eq!(late.iter().sum::<usize>(), 0, "batches of {size}");
        let all: Vec<Signal> = signals.into_iter().flatten().collect();
        assert_eq!(only(&all, "ssh_brute_force").count, 6, "batches of {size}");
    }
}

#[test]
fn a_quiet_host_holds_windows_open_for_at_most_the_skew() {
    // web-2 logs once at 0 s and falls quiet; bastion-1 is attacked at 10–30 s and keeps logging.
    let mut lines = vec![line(
        0,
        "web-2",
        "sshd[2]",
        "Connection closed by 10.0.0.1 port 22",
    )];
    lines.extend((0..5).map(|i| fail(10 + i * 5, "root", "203.0.113.7")));
    let tick = |secs| {
        line(
            secs,
            "bastion-1",
            "sshd[10]",
            "Connection closed by 10.0.0.1 port 22",
        )
    };
    // At 200 s web-2 (200 s behind) still holds the watermark at 0 − 30 s: the window of the attack stays open.
    lines.push(tick(200));
    // At 400 s web-2 is more than 300 s behind and stops holding: the watermark is 370 s and the window closes.
    lines.push(tick(400));
    // A line of web-2 from before the watermark is now late.
    lines.push(line(
        300,
        "web-2",
        "sshd[2]",
        "Connection closed by 10.0.0.1 port 22",
    ));
    let (late, signals) = late_and_signals(&lines, 1);
    assert_eq!(late, [0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let fired_at: Vec<usize> = (signals.iter().enumerate())
        .filter(|(_, s)| s.iter().any(|s| s.signal == "ssh_brute_force"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        fired_at,
        [7],
        "fires with the batch of the 400 s line, not before"
    );
}

#[test]
fn a_checkpoint_from_before_host_clocks_keeps_its_watermark() {
    let (_rt, mut e) = engine();
    let newest = 1_773_478_800_000_000i64;
    let old =
        format!(r#"{{"max_event_us":{{"acme":{newest}}},"entities":{{}},"state_overflow":0}}"#);
    e.restore(serde_json::from_str(&old).unwrap());
    assert_eq!(e.watermark("acme"), Some(newest - 30_000_000));
    let saved = serde_json::to_string(&e.snapshot()).unwrap();
    assert!(!saved.contains("max_event_us"), "{saved}");
    let (_rt, mut again) = engine();
    again.restore(serde_json::from_str(&saved).unwrap());
    assert_eq!(again.watermark("acme"), Some(newest - 30_000_000));
}

#[test]
fn tenants_have_their_own_watermarks() {
    // globex's clock racing ahead must not make acme's events late.
    let mut cols = EventColumns::default();
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    let mut push = |tenant: &str, l: String| {
        let input = Input {
            bytes: l.as_bytes(),
            source: "t",
            header_tenant: Some(tenant.as_bytes()),
            fallback_tenant: None,
            reference_us: 0,
            reference_is_event_time: false,
            read_us: None,
        };
        n.normalize_into(&input, &mut cols).unwrap();
    };
    push(
        "globex",
        line(
            3000,
            "g",
            "sshd[1]",
            "Connection closed by 10.0.0.1 port 22",
        ),
    );
    for i in 0..5 {
        push("acme", fail(i, "root", "203.0.113.7"));
    }
    let (rt, mut e) = engine();
    let o = rt.block_on(e.process(&cols.finish())).unwrap();
    assert!(o.late_rows.is_empty());
    let s: Vec<Signal> = o.signals.into_iter().chain(e.finish()).collect();
    assert_eq!(only(&s, "ssh_brute_force").tenant.as_str(), "acme");
}

#[test]
fn same_input_same_ids_and_bytes() {
    let lines = mixed_scenario();
    let a = serde_json::to_string(&run(&lines)).unwrap();
    let b = serde_json::to_string(&run(&lines)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_distinct_set_over_a_number_column_counts_its_values() {
    let detection: Detection = toml::from_str(
        r#"
name = "port_probe"
title = "Many source ports from one source"
filter = "action = 'ssh_login' AND outcome = 'failure' AND source_ip IS NOT NULL"
group_by = ["source_ip"]
window = { kind = "tumbling", size_secs = 60 }
aggregates = [{ name = "ports", sql = "array_agg(DISTINCT source_port)", merge = "union" }]
conditions = ["ports >= 3"]
risk = { base = 0.3 }
mitre = [{ technique = "T1110", tactic = "Credential Access" }]
compliance = ["SOC2:CC6.1"]
intent = "Credential Access"
narrative = "{source_ip} used {ports} ports."
recommendation = "Check {source_ip}."
"#,
    )
    .unwrap();
    let probe = |secs: u32, port: u32| {
        line(
            secs,
            "bastion-1",
            "sshd[10]",
            &format!("Failed password for root from 192.0.2.9 port {port} ssh2"),
        )
    };
    let lines = [
        probe(1, 4000),
        probe(2, 4001),
        probe(3, 4000),
        probe(4, 4002),
    ];
    let got = run_with(vec![detection], &lines, 2);
    assert_eq!(names(&got), ["port_probe"]);
    assert_eq!(got[0].count, 4);
    assert!(
        got[0].narrative.contains("4000, 4001, 4002"),
        "{}",
        got[0].narrative
    );
}
