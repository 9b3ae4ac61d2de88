//! The embedded default, through the real binary: replay, normalize, validate and their errors.

use std::fs;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{classic_stamp_now, replay_stored, sentra, stderr, stdout};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth.log");

fn parquet_rows(dir: &Path) -> (usize, usize) {
    let mut files = 0;
    let mut rows = 0;
    for f in fs::read_dir(dir).unwrap() {
        let f = fs::File::open(f.unwrap().path()).unwrap();
        files += 1;
        rows += ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum::<usize>();
    }
    (files, rows)
}

/// Every quarantine record in an embedded store.
fn stored_quarantine(data: &Path) -> Vec<sentra_schemas::Quarantined> {
    fs::read_dir(data.join("quarantine"))
        .unwrap()
        .flat_map(|f| {
            fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn replay_of_the_sample_finds_the_brute_force_and_stores_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = replay_stored("acme", &data, SAMPLE);
    assert!(first.status.success(), "{}", stderr(&first));
    let signals: Vec<serde_json::Value> = stdout(&first)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brute: Vec<_> = signals
        .iter()
        .filter(|s| s["ip"] == "203.0.113.7")
        .collect();
    assert_eq!(brute.len(), 1, "{signals:?}");
    assert_eq!(brute[0]["signal"], "ssh_brute_force");
    assert_eq!(brute[0]["count"], 12);
    assert_eq!(brute[0]["tenant"], "acme");
    assert_eq!(brute[0]["mitre"][0]["technique"], "T1110.001");
    assert_eq!(brute[0]["window_start"], "2026-03-14T09:14:00.000000Z");
    let lines = fs::read_to_string(SAMPLE).unwrap().lines().count();
    assert!(
        stderr(&first).contains(&format!("{lines} events")),
        "{}",
        stderr(&first)
    );

    // Replaying the same file again changes nothing: same signals, same parts, no duplicate rows.
    let second = replay_stored("acme", &data, SAMPLE);
    assert!(second.status.success());
    assert_eq!(stdout(&first), stdout(&second));
    assert_eq!(parquet_rows(&data.join("events/tenant=acme")), (1, lines));
    assert_eq!(
        parquet_rows(&data.join("signals/tenant=acme")).1,
        signals.len()
    );
}

#[test]
fn replay_quarantines_bad_lines_with_reasons_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.log");
    let mut body =
        b"Mar 14 01:00:00 h sshd[1]: Accepted password for a from 1.2.3.4 port 22 ssh2\n".to_vec();
    body.extend_from_slice(b"no timestamp here\n\n{\"tenant\": \n");
    body.extend_from_slice(b"Mar 14 01:00:01 h sshd[1]: \xff\xfe\n");
    body.extend_from_slice(
        br#"{"tenant":"../../etc","message":"Mar 14 01:00:02 h su: (to root) a on pts/0"}"#,
    );
    body.push(b'\n');
    fs::write(&input, &body).unwrap();
    let data = dir.path().join("data");
    let out = replay_stored("acme", &data, input.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    // The line with invalid UTF-8 is an event, read lossily: a stray byte must not hide a line from detection.
    for needle in [
        "2 events",
        "3 quarantined",
        "1 blank",
        "not valid UTF-8, read lossily: 1",
        "no_timestamp: 1",
        "invalid_json: 1",
        "invalid_tenant: 1",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!err.contains("invalid_utf8"), "{err}");
    let q = stored_quarantine(&data);
    assert_eq!(q.len(), 3);
    let out = sentra(&[
        "normalize",
        "--tenant",
        "acme",
        "--year",
        "2026",
        input.to_str().unwrap(),
    ]);
    let lossy: serde_json::Value = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .find(|e: &serde_json::Value| e["event"]["original"].as_str().unwrap().contains("\\xff"))
        .expect("the line with invalid UTF-8 is normalized");
    assert_eq!(
        lossy["event"]["original"],
        "Mar 14 01:00:01 h sshd[1]: \\xff\\xfe"
    );
    assert_eq!(lossy["message"], "\u{fffd}\u{fffd}");
}

#[test]
fn control_characters_in_a_user_name_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hostile.log");
    let lines: String = (0..3)
        .map(|i| format!("Mar 14 09:00:0{i} bastion-1 sshd[7{i}]: Failed password for invalid user \x1b[2J\rroot\0 from 203.0.113.7 port 4000{i} ssh2\n"))
        .collect();
    fs::write(&log, lines).unwrap();
    let data = dir.path().join("data");
    let out = replay_stored("acme", &data, log.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sentra(&[
        "query",
        "top 3 users with failed logins",
        "--tenant",
        "acme",
        "--data-dir",
        data.to_str().unwrap(),
        "--now",
        "2026-03-14T12:00:00Z",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("\\x1b[2J\\rroot\\0"), "{table}");
    for raw in ['\x1b', '\r', '\0'] {
        assert!(
            !table.contains(raw),
            "{raw:?} reached the terminal: {table:?}"
        );
    }
}

#[test]
fn a_host_whose_clock_runs_ahead_does_not_hide_an_attack_on_another() {
    // web-2's clock runs 150 s ahead; both hosts log every minute for ten minutes, then web-1 is
    // password-sprayed while web-2 keeps logging.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("skew.log");
    let at = |secs: u32| format!("Mar 14 09:{:02}:{:02}", secs / 60, secs % 60);
    let closed = |secs, host: &str| {
        format!(
            "{} {host} sshd[2]: Connection closed by 10.0.0.1 port 22\n",
            at(secs)
        )
    };
    let mut body = String::new();
    for minute in 0..10 {
        body += &closed(minute * 60, "web-1");
        body += &closed(minute * 60 + 150, "web-2");
    }
    for i in 0..30 {
        body += &closed(750 + i, "web-2");
        body += &format!(
            "{} web-1 sshd[3]: Failed password for invalid user u{i} from 198.51.100.7 port 4{i:03} ssh2\n",
            at(600 + i)
        );
    }
    fs::write(&input, body).unwrap();
    let replay = |skew: &str| {
        let out = sentra(&[
            "replay",
            "--no-store",
            "--tenant",
            "acme",
            "--year",
            "2026",
            "--max-clock-skew",
            skew,
            input.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let (signals, summary) = replay("300");
    assert!(summary.contains(" 0 late"), "{summary}");
    assert!(signals.contains("\"ssh_password_spray\""), "{signals}");
    // Replay hands events on in time order, so even allowing less skew than the hosts differ by, web-2's
    // lines dated ahead come after web-1's and make none of them late (a stream read in arrival order relies
    // on the skew rule alone; see detect/clock.rs).
    let (signals, summary) = replay("60");
    assert!(summary.contains(" 0 late"), "{summary}");
    assert!(signals.contains("\"ssh_password_spray\""), "{signals}");
}

#[test]
fn one_line_dated_years_ahead_is_quarantined_and_does_not_blind_its_tenant() {
    // A hostile or broken host writes one line dated 2099 before web-1 is password-sprayed. Taken as event
    // time it would carry acme's watermark to 2099 and every later line would be late.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("poison.log");
    let mut body =
        "<38>1 2099-01-01T00:00:00Z web-9 sshd 1 - - Connection closed by 10.0.0.9 port 22\n"
            .to_owned();
    for i in 0..30 {
        body += &format!(
            "Mar 14 09:10:{i:02} web-1 sshd[3]: Failed password for invalid user u{i} from 198.51.100.7 port 4{i:03} ssh2\n"
        );
    }
    fs::write(&input, body).unwrap();
    let data = dir.path().join("data");
    let out = replay_stored("acme", &data, input.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(summary.contains("future: 1"), "{summary}");
    assert!(summary.contains(" 0 late"), "{summary}");
    assert!(
        stdout(&out).contains("\"ssh_password_spray\""),
        "{}",
        stdout(&out)
    );
    // Nothing vanished: the line is in the quarantine with its reason and its bytes.
    let q = stored_quarantine(&data);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].reason, sentra_schemas::QuarantineReason::Future);
    assert!(q[0].original.starts_with(b"<38>1 2099-01-01"));
}

#[test]
fn replay_reports_detections_shedding_state_in_its_summary_and_signals() {
    // 3,000 user names from as many addresses in five minutes, where each detection follows 100 at once.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("spray.log");
    let body: String = (0..3000)
        .map(|i| {
            let (m, s) = (i / 600, i / 10 % 60);
            format!(
                "Mar 14 09:{m:02}:{s:02} web-1 sshd[3]: Failed password for invalid user u{i} from 10.0.{}.{} port 4000 ssh2\n",
                i / 256,
                i % 256
            )
        })
        .collect();
    fs::write(&input, body).unwrap();
    let path = input.to_str().unwrap();
    let args = ["replay", "--no-store", "--tenant", "acme", "--year", "2026"];
    let out = sentra(&[&args[..], &["--max-entities-per-detection", "100", path]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(
        summary.contains("state shed by ssh_brute_force for acme: "),
        "{summary}"
    );
    assert!(
        summary.contains("raise --max-entities-per-detection"),
        "{summary}"
    );
    let degraded: Vec<serde_json::Value> = (stdout(&out).lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|s: &serde_json::Value| s["signal"] == "detection_degraded")
        .collect();
    assert!(!degraded.is_empty(), "{}", stdout(&out));
    assert!(degraded
        .iter()
        .all(|s| s["severity"] == "LOW" && s["tenant"] == "acme"));
    // At the default limit nothing is shed.
    let out = sentra(&[&args[..], &[path]].concat());
    assert!(!stderr(&out).contains("state shed"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("detection_degraded"));
}

#[test]
fn a_stream_piped_in_is_judged_by_the_clock_when_each_line_arrives() {
    // With a 1 s bound, a line written 3 s after the stream started and dated at that moment is not ahead
    // of its read time, though it is ahead of the clock at the start.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sentra"))
        .args([
            "replay",
            "--no-store",
            "--tenant",
            "acme",
            "--max-clock-skew",
            "1",
            "-",
        ])
        .env("SENTRA_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let line = || {
        let now = sentra_schemas::time::now_us();
        format!(
            "{} web-1 sshd[1]: Connection closed by 10.0.0.1 port 22\n",
            sentra_schemas::time::format_rfc3339_us(now)
        )
    };
    std::io::Write::write_all(&mut stdin, line().as_bytes()).unwrap();
    std::io::Write::flush(&mut stdin).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    std::io::Write::write_all(&mut stdin, line().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(
        summary.contains("2 events") && !summary.contains("future"),
        "{summary}"
    );
}

#[test]
fn classic_syslog_written_in_local_time_is_read_in_the_zone_given() {
    // A host in Tokyo (UTC+9 all year) writes its local time with no zone, as classic syslog does.
    let line = format!(
        "{} web-1 sshd[1]: Connection closed by 10.0.0.1 port 22\n",
        classic_stamp_now(9)
    );
    let replay = |zone: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sentra"))
            .args(["replay", "--no-store", "--tenant", "acme"])
            .args(zone)
            .arg("-")
            .env("SENTRA_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), line.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    // Read as UTC, the line is nine hours ahead of the clock that read it.
    let as_utc = replay(&[]);
    assert!(
        as_utc.contains("0 events") && as_utc.contains("future"),
        "{as_utc}"
    );
    for zone in [
        &["--timezone", "Asia/Tokyo"][..],
        &["--tenant-timezone", "acme=Asia/Tokyo"],
    ] {
        let stored = replay(zone);
        assert!(
            stored.contains("1 events") && !stored.contains("future"),
            "{zone:?}: {stored}"
        );
    }
    // Another tenant's zone leaves acme in the default, UTC.
    let other = replay(&["--tenant-timezone", "globex=Asia/Tokyo"]);
    assert!(other.contains("future"), "{other}");
}

#[test]
fn normalize_prints_ecs_json_lines() {
    let out = sentra(&["normalize", "--tenant", "acme", "--year", "2026", SAMPLE]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["@timestamp"], "2026-03-14T08:00:01.000000Z");
    assert_eq!(first["organization"]["id"], "acme");
    assert_eq!(first["event"]["action"], "ssh_login");
    assert_eq!(first["source"]["ip"], "10.0.4.20");
}

#[test]
fn user_errors_say_what_to_do_and_exit_non_zero() {
    let out = sentra(&["replay", "--tenant", "acme", "/nonexistent/auth.log"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/auth.log is not a readable file"),
        "{}",
        stderr(&out)
    );
    let out = sentra(&["replay", "--tenant", "../x", SAMPLE]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a valid tenant"),
        "{}",
        stderr(&out)
    );
    let out = sentra(&["replay", "--timezone", "CEST", SAMPLE]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--timezone") && stderr(&out).contains("IANA"),
        "{}",
        stderr(&out)
    );
    let out = sentra(&["replay", "--tenant-timezone", "Europe/Berlin", SAMPLE]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("TENANT=ZONE"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sentra.toml");
    let validate = |toml: &str| {
        fs::write(&cfg, toml).unwrap();
        sentra(&["validate", "--config", cfg.to_str().unwrap()])
    };
    let out = validate(
        "[kafka]\ntopics = []\n[clickhouse]\nurl = \"localhost:8123\"\npassword = \"hunter2\"\n",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("kafka.topics") && err.contains("clickhouse.url"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
    let out = validate(
        "[input]\ntimezone = \"Europe/Berln\"\n[tenants]\ntimezone = { acme = \"Asia/Tokyo\" }\nutc_offset_minutes = { acme = 540 }\n",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Europe/Berln") && err.contains("both tenants.timezone"),
        "{err}"
    );
    let out = validate(
        "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[tenants]\ntimezone = { acme = \"Europe/Berlin\" }\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/sentra.example.toml");
    let out = sentra(&["validate", "--config", example]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn detections_list_and_test() {
    let out = sentra(&["detections", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&out);
    for name in [
        "ssh_brute_force",
        "ssh_password_spray",
        "sudo_abuse",
        "privileged_group_add",
    ] {
        assert!(list.contains(name), "{name} missing from {list}");
    }
    assert!(list.contains("T1110.001") && list.contains("Credential Access"));

    let out = sentra(&["detections", "test", "--year", "2026", SAMPLE]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("ssh_brute_force: 1 signal(s)"), "{report}");
    assert!(report.contains("ssh_root_login: 0 signal(s)"), "{report}");

    // A user's own detection joins the catalog; a broken one is reported by file and the run fails.
    let dir = tempfile::tempdir().unwrap();
    let mine = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/detections/ssh_root_login.toml"
    ))
    .unwrap()
    .replace("name = \"ssh_root_login\"", "name = \"any_ssh_login\"")
    .replace(
        "outcome = 'success' AND user_name = 'root'",
        "outcome = 'success'",
    );
    fs::write(dir.path().join("mine.toml"), mine).unwrap();
    let folder = dir.path().to_str().unwrap();
    let out = sentra(&[
        "detections",
        "test",
        "--year",
        "2026",
        "--detections",
        folder,
        SAMPLE,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("any_ssh_login: 2 signal(s)"),
        "{}",
        stdout(&out)
    );
    fs::write(
        dir.path().join("broken.toml"),
        "name = \"x\"\nfilter = \"(\"",
    )
    .unwrap();
    let out = sentra(&["detections", "list", "--detections", folder]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken.toml"), "{}", stderr(&out));
}

#[test]
fn overrides_mark_signals_without_deleting_them() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("overrides.json");
    fs::write(
        &overrides,
        r#"{"overrides":[
            {"id":"pentest","action":"suppress","reason":"Authorised penetration test (CHG-77)",
             "match":{"detection":"ssh_brute_force","source_cidr":"203.0.113.0/24"}},
            {"id":"onboarding","action":"downgrade","severity":"LOW","reason":"Planned onboarding",
             "match":{"tenant":"acme","user":"svc-report"}}]}"#,
    )
    .unwrap();
    let out = sentra(&[
        "replay",
        "--no-store",
        "--tenant",
        "acme",
        "--year",
        "2026",
        "--overrides",
        overrides.to_str().unwrap(),
        SAMPLE,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let signals: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(signals.len(), 6, "overridden signals are still emitted");
    let brute = signals
        .iter()
        .find(|s| s["signal"] == "ssh_brute_force")
        .unwrap();
    assert_eq!(brute["suppressed"], true);
    assert_eq!(
        brute["override"]["reason"],
        "Authorised penetration test (CHG-77)"
    );
    assert_eq!(brute["severity"], "HIGH");
    for s in signals.iter().filter(|s| s["user"] == "svc-report") {
        assert_eq!(
            (s["severity"].as_str(), s["override"]["id"].as_str()),
            (Some("LOW"), Some("onboarding")),
            "{s}"
        );
        assert!(s["risk_score"].as_f64().unwrap() < 0.3);
    }
    let spray = signals
        .iter()
        .find(|s| s["signal"] == "ssh_password_spray")
        .unwrap();
    assert!(spray.get("override").is_none() && spray.get("suppressed").is_none());

    fs::write(
        &overrides,
        r#"{"overrides":[{"id":"x","action":"suppress","reason":"","match":{}}]}"#,
    )
    .unwrap();
    let out = sentra(&[
        "replay",
        "--no-store",
        "--tenant",
        "acme",
        "--overrides",
        overrides.to_str().unwrap(),
        SAMPLE,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("reason is required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_prints_each_stage_over_the_whole_file() {
    let out = sentra(&["bench", "--tenant", "acme", SAMPLE]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let field = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} in {text}"));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let lines = fs::read_to_string(SAMPLE).unwrap().lines().count();
    assert_eq!(field("lines "), [lines.to_string()]);
    assert_eq!(field("stage"), ["normalize", "full", "path"]);
    // The full path runs the catalog on the sample, which holds a brute force.
    assert_ne!(field("signals"), ["0"]);
    for name in [
        "wall seconds",
        "cpu seconds",
        "lines/s",
        "lines/cpu-s",
        "peak rss MiB",
    ] {
        let values = field(name);
        assert_eq!(values.len(), 2, "{name}: {values:?}");
        for v in values {
            assert!(v.parse::<f64>().is_ok_and(|v| v >= 0.0), "{name}: {v}");
        }
    }
}
