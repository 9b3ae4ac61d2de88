//! Engine tests beyond what the detection cases (`golden`) show: results do not depend on batching, plan
//! sharing, compaction or restarts; late and skewed events; evidence beside late rows; errors.

use arrow::array::AsArray;
use sentra_schemas::{EventColumns, Signal};

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
    tenant_batches(lines.iter().map(|l| ("acme", l.as_str())), size)
}

/// Batches of `size` (tenant, line) pairs.
fn tenant_batches<'a>(
    lines: impl Iterator<Item = (&'a str, &'a str)>,
    size: usize,
) -> Vec<arrow::array::RecordBatch> {
    let mut n = Normalizer::new(NormalizeConfig {
        year: YearPolicy::Fixed(2026),
        ..NormalizeConfig::default()
    });
    let mut cols = EventColumns::default();
    let mut out = Vec::new();
    for (i, (tenant, l)) in lines.enumerate() {
        let src = format!("t:{i}");
        let input = Input {
            bytes: l.as_bytes(),
            source: &src,
            header_tenant: None,
            fallback_tenant: Some(tenant),
            pinned_tenant: None,
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
fn an_unknown_time_zone_does_not_start_the_engine() {
    let config = EngineConfig {
        timezone: "Europe/Berln".into(),
        ..EngineConfig::default()
    };
    let err = runtime().block_on(Engine::new(catalog::builtin(), config));
    assert!(err.is_err_and(|e| e.to_string().contains("Europe/Berln")));
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

/// `Mar 16 2026 10:00` UTC, epoch µs: the time [`at`] counts from.
const TEN_AM_US: i64 = 1_773_655_200_000_000;

#[test]
fn a_line_dated_ahead_does_not_blind_a_tenant_in_live_input() {
    // bastion-1 and web-2 log every minute, each line read a second after it was written. At 610 s web-2
    // writes a line dated 290 s ahead (within the skew normalization allows) while bastion-1 is quiet, then
    // bastion-1 is attacked, and web-2 does it again. On event time alone the watermark jumps to 870 s and
    // the attack is late.
    let closed = |secs, host| {
        line(
            secs,
            host,
            "sshd[2]",
            "Connection closed by 10.0.0.1 port 22",
        )
    };
    let mut lines = Vec::new();
    let mut read_secs = Vec::new();
    for minute in 0..10 {
        for host in ["bastion-1", "web-2"] {
            lines.push(closed(minute * 60, host));
            read_secs.push(minute * 60 + 1);
        }
    }
    for ahead in [610, 630] {
        lines.push(closed(ahead + 290, "web-2"));
        read_secs.push(ahead);
        for j in 0..3 {
            let secs = ahead + 5 + 5 * j;
            lines.push(fail(secs, "root", "203.0.113.7"));
            read_secs.push(secs + 1);
        }
    }
    let read_us: Vec<i64> = (read_secs.iter())
        .map(|&s| TEN_AM_US + i64::from(s) * 1_000_000)
        .collect();
    for size in [1, 5, 100] {
        let (rt, mut e) = engine();
        let (mut late, mut live) = (0, Vec::new());
        let mut at = 0;
        for b in batches(&lines, size) {
            let reads = &read_us[at..at + b.num_rows()];
            at += b.num_rows();
            let o = rt.block_on(e.process_live(&b, reads)).unwrap();
            late += o.late_rows.len();
            live.extend(o.signals);
        }
        live.extend(e.finish());
        assert_eq!(late, 0, "batches of {size}");
        assert_eq!(only(&live, "ssh_brute_force").count, 6, "batches of {size}");
        assert!(e.watermark("acme").unwrap() <= read_us[read_us.len() - 1] - 30_000_000);
    }
    // Replayed, the same lines have no reader's clock: event time alone decides, and the attack is late.
    let (late, replayed) = late_and_signals(&lines, 100);
    assert_eq!(late.iter().sum::<usize>(), 6);
    assert!(replayed
        .iter()
        .flatten()
        .all(|s| s.signal != "ssh_brute_force"));
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
            pinned_tenant: None,
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
fn a_spray_of_user_names_sheds_the_least_active_state_of_its_own_detections_only() {
    // 100,000 distinct user names from as many addresses in ten minutes, one try each, while 203.0.113.7
    // brute-forces root; globex sees a brute force of its own. Each detection holds 5,000 entities per tenant.
    let limit = 5_000;
    let spray = |i: u32| {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        let msg = format!("Failed password for invalid user u{i} from {ip} port 4000 ssh2");
        ("acme", line(i * 6 / 1000, "bastion-1", "sshd[10]", &msg))
    };
    let mut lines: Vec<(&str, String)> = Vec::new();
    for i in 0..100_000 {
        lines.push(spray(i));
        if i % 1000 == 0 && (30_000..37_000).contains(&i) {
            lines.push(("acme", fail(i * 6 / 1000, "root", "203.0.113.7")));
            lines.push(("globex", fail(i * 6 / 1000, "root", "198.51.100.9")));
        }
    }
    let config = EngineConfig {
        max_entities_per_detection: limit,
        ..EngineConfig::default()
    };
    let rt = runtime();
    let mut e = rt
        .block_on(Engine::new(catalog::builtin(), config))
        .unwrap();
    let bound = limit * e.detections().count() + 100;
    let mut signals = Vec::new();
    for b in tenant_batches(lines.iter().map(|(t, l)| (*t, l.as_str())), 4096) {
        signals.extend(rt.block_on(e.process(&b)).unwrap().signals);
        assert!(e.entities() <= bound, "{} entities", e.entities());
    }
    // A restart from a checkpoint taken here continues exactly, shedding included.
    let saved = serde_json::to_string(&e.snapshot()).unwrap();
    let mut again = rt
        .block_on(Engine::new(
            catalog::builtin(),
            EngineConfig {
                max_entities_per_detection: limit,
                ..EngineConfig::default()
            },
        ))
        .unwrap();
    again.restore(serde_json::from_str(&saved).unwrap());
    assert_eq!(again.shed(), e.shed());
    let rest = e.finish();
    assert_eq!(again.finish(), rest);
    signals.extend(rest);
    let fired = |tenant: &str, name: &str| -> Vec<&Signal> {
        (signals.iter())
            .filter(|s| s.tenant.as_str() == tenant && s.signal == name)
            .collect()
    };
    for (tenant, ip) in [("acme", "203.0.113.7"), ("globex", "198.51.100.9")] {
        let brute = fired(tenant, "ssh_brute_force");
        assert_eq!(brute.len(), 1, "{tenant}: {brute:?}");
        assert_eq!((brute[0].ip.as_deref(), brute[0].count), (Some(ip), 7));
    }
    let degraded = fired("acme", DEGRADED);
    let shed = &e.shed()["acme"];
    assert!(shed["ssh_brute_force"] > 90_000, "{shed:?}");
    assert_eq!(e.state_overflow(), shed.values().sum::<u64>());
    let brute_force = (degraded.iter())
        .find(|s| {
            s.narrative
                .starts_with("Detection ssh_brute_force is shedding state for tenant acme")
        })
        .unwrap();
    assert_eq!(brute_force.severity, sentra_schemas::Severity::Low);
    assert!(brute_force.risk_score <= 0.2);
    assert_eq!(
        degraded.iter().map(|s| s.count).sum::<u64>(),
        e.state_overflow(),
        "every entity dropped is reported"
    );
    assert!(fired("globex", DEGRADED).is_empty());
    assert!(!e.shed().contains_key("globex"));
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
