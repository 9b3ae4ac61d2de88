//! Replay semantics on files as people have them: several files covering the same hours, nearly sorted
//! files, compressed rotations, and archives of an earlier year.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{classic_stamp, sentra, stderr, stdout};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth.log");

/// Replays `files` (no store) with `args`; returns each signal as `id severity risk`, sorted, and the summary.
fn signals(args: &[&str], files: &[&Path]) -> (Vec<String>, String) {
    let mut all = vec!["replay", "--no-store", "--tenant", "acme"];
    all.extend_from_slice(args);
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    all.extend(files);
    let out = sentra(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut found: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            let s: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {} {} {}",
                s["signal"], s["id"], s["severity"], s["risk_score"]
            )
        })
        .collect();
    found.sort();
    (found, stderr(&out))
}

/// The sample, time-ordered, with an attack across the morning: failures from one source all morning, then
/// at 09:00:40 a login from it; and quiet traffic until noon on another host.
fn day_of_logs() -> Vec<String> {
    let mut lines: Vec<String> = fs::read_to_string(SAMPLE)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for i in 0..8 {
        lines.push(format!(
            "Mar 14 09:00:{:02} bastion-2 sshd[7{i}]: Failed password for alice from 192.0.2.80 port {} ssh2",
            i * 4,
            40_000 + i
        ));
    }
    lines.push(
        "Mar 14 09:00:40 bastion-2 sshd[79]: Accepted password for alice from 192.0.2.80 port 40100 ssh2"
            .to_owned(),
    );
    for m in 0..180 {
        lines.push(format!(
            "Mar 14 {:02}:{:02}:30 web-3 CRON[{}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
            9 + m / 60,
            m % 60,
            5000 + m
        ));
    }
    lines.sort_by(|a, b| a[..15].cmp(&b[..15]));
    lines
}

fn write(path: &Path, lines: &[&String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, text).unwrap();
}

#[test]
fn lines_split_over_files_in_any_order_give_the_signals_of_one_ordered_file() {
    let dir = tempfile::tempdir().unwrap();
    let lines = day_of_logs();
    let whole = dir.path().join("auth.log");
    write(&whole, &lines.iter().collect::<Vec<_>>());
    let (expected, summary) = signals(&["--year", "2026"], &[&whole]);
    assert!(summary.contains(" 0 late"), "{summary}");
    assert!(
        expected
            .iter()
            .any(|s| s.starts_with("\"ssh_login_after_failures\"")),
        "{expected:?}"
    );

    // One file per host, as a syslog server collects them.
    let mut hosts: Vec<&str> = lines
        .iter()
        .map(|l| l[16..].split(' ').next().unwrap())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let per_host: Vec<_> = hosts
        .iter()
        .map(|h| {
            let path = dir.path().join(format!("{h}.log"));
            let mine: Vec<&String> = lines.iter().filter(|l| l[16..].starts_with(h)).collect();
            write(&path, &mine);
            path
        })
        .collect();
    // Alternate lines, as two rotations whose hours overlap.
    let halves: Vec<_> = (0..2)
        .map(|k| {
            let path = dir.path().join(format!("half{k}.log"));
            let mine: Vec<&String> = lines.iter().skip(k).step_by(2).collect();
            write(&path, &mine);
            path
        })
        .collect();
    let mut reversed: Vec<&Path> = per_host.iter().map(|p| p.as_path()).collect();
    reversed.reverse();
    for files in [
        per_host.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        reversed,
        vec![halves[1].as_path(), halves[0].as_path()],
    ] {
        let (got, summary) = signals(&["--year", "2026"], &files);
        assert_eq!(got, expected, "{files:?}");
        assert!(summary.contains(" 0 late"), "{files:?}: {summary}");
    }

    // Nearly sorted: lines shuffled within blocks of five (a few seconds at most), in one file and on stdin.
    let mut shuffled: Vec<&String> = Vec::new();
    for block in lines.chunks(5) {
        let mut b: Vec<&String> = block.iter().collect();
        b.reverse();
        b.rotate_left(block.len() / 2);
        shuffled.extend(b);
    }
    let nearly = dir.path().join("nearly.log");
    write(&nearly, &shuffled);
    let (got, summary) = signals(&["--year", "2026"], &[&nearly]);
    assert_eq!(got, expected);
    assert!(!summary.contains("out of order"), "{summary}");
}

#[test]
fn files_read_one_after_another_lose_nothing_to_lateness() {
    // auth.log.1 holds the morning's failures and a login; auth.log holds the rest of the day, passed first.
    let dir = tempfile::tempdir().unwrap();
    let lines = day_of_logs();
    let (morning, rest): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l[16..].starts_with("bastion-2"));
    let (older, newer) = (dir.path().join("auth.log.1"), dir.path().join("auth.log"));
    write(&older, &morning);
    write(&newer, &rest);
    let (got, summary) = signals(&["--year", "2026"], &[&newer, &older]);
    assert!(
        got.iter()
            .any(|s| s.starts_with("\"ssh_login_after_failures\"")),
        "{got:?}\n{summary}"
    );
    assert!(summary.contains(" 0 late"), "{summary}");
}

#[test]
fn disorder_beyond_the_reorder_window_is_counted_and_explained() {
    // `cat newer older |`: two hours of a busy host's lines (more than one read batch), then the morning.
    let dir = tempfile::tempdir().unwrap();
    let lines = day_of_logs();
    let morning: Vec<&String> = lines
        .iter()
        .filter(|l| l.as_str() < "Mar 14 09:00:41")
        .collect();
    let busy: Vec<String> = (0..70_000)
        .map(|i| {
            let t = 10 * 3600 + i / 10;
            format!(
                "Mar 14 {:02}:{:02}:{:02} web-4 CRON[{i}]: pam_unix(cron:session): session closed for user root",
                t / 3600,
                t / 60 % 60,
                t % 60
            )
        })
        .collect();
    let mut catted: Vec<&String> = busy.iter().collect();
    catted.extend(morning);
    let file = dir.path().join("catted.log");
    write(&file, &catted);
    let (_, summary) = signals(&["--year", "2026", "--reorder-window", "60"], &[&file]);
    assert!(
        summary.contains("out of order beyond the reorder window"),
        "{summary}"
    );
    assert!(
        summary.contains("hint: ") && summary.contains("--reorder-window"),
        "{summary}"
    );
    // A window wide enough puts them back in order.
    let (got, summary) = signals(&["--year", "2026", "--reorder-window", "86400"], &[&file]);
    assert!(!summary.contains("out of order"), "{summary}");
    assert!(summary.contains(" 0 late"), "{summary}");
    assert!(
        got.iter()
            .any(|s| s.starts_with("\"ssh_login_after_failures\"")),
        "{got:?}"
    );
}

/// `days_ago` days before today at `hour`:`minute` UTC as a classic syslog stamp, and that day's year.
fn classic_day(days_ago: i64, hour: i64, minute: i64) -> (String, i64) {
    let day = sentra_schemas::time::now_us().div_euclid(86_400_000_000) - days_ago;
    let year = sentra_schemas::time::civil_from_days(day).0;
    (
        classic_stamp(day * 86_400 + hour * 3600 + minute * 60),
        year,
    )
}

#[test]
fn an_archive_from_last_year_is_placed_in_the_past_without_year() {
    // Written a year ago, ending ten days later in the year than today: this year, its end would be ahead.
    let dir = tempfile::tempdir().unwrap();
    let (first, year) = classic_day(357, 10, 0);
    let (last, _) = classic_day(355, 10, 5);
    let mut lines: Vec<String> = (0..8)
        .map(|i| {
            format!("{first} web-1 sshd[9]: Failed password for root from 203.0.113.9 port 4{i:03} ssh2")
        })
        .collect();
    lines.push(format!(
        "{last} web-1 sshd[9]: Accepted password for root from 203.0.113.9 port 5000 ssh2"
    ));
    let plain = dir.path().join("auth.log.3");
    write(&plain, &lines.iter().collect::<Vec<_>>());
    // logrotate's compressed rotation of the same file.
    let gz = dir.path().join("auth.log.4.gz");
    let status = std::process::Command::new("gzip")
        .args(["-c", plain.to_str().unwrap()])
        .stdout(fs::File::create(&gz).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    for file in [&plain, &gz] {
        let (got, summary) = signals(&[], &[file]);
        assert!(!summary.contains("future"), "{summary}");
        assert!(summary.contains("9 events"), "{summary}");
        assert!(
            got.iter().any(|s| s.starts_with("\"ssh_brute_force\"")),
            "{got:?}"
        );
        let out = sentra(&["normalize", "--tenant", "acme", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        for event in stdout(&out).lines() {
            let e: serde_json::Value = serde_json::from_str(event).unwrap();
            assert!(
                e["@timestamp"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{year}-")),
                "{e}"
            );
        }
    }
    // Told the wrong year, the lines are ahead of the clock, and the summary says what to do.
    let (_, summary) = signals(&["--year", &(year + 1).to_string()], &[&plain]);
    assert!(summary.contains("quarantined future: 9"), "{summary}");
    assert!(
        summary.contains("hint: 9 lines dated after") && summary.contains("--year"),
        "{summary}"
    );
}

/// Every rename into a directory is followed by a sync of that directory, so a power loss cannot bring back
/// the store's old files. Observed with strace (skipped, saying so, where strace is not installed).
#[test]
fn the_embedded_store_syncs_each_directory_it_renames_into() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed: not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, trace) = (dir.path().join("data"), dir.path().join("trace"));
    let ok = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=openat,fsync,rename,renameat,renameat2",
            "-o",
        ])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_sentra"))
        .args(["replay", "--tenant", "acme", "--year", "2026", "--data-dir"])
        .arg(&data)
        .arg(SAMPLE)
        .env("SENTRA_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let quoted = |line: &str, nth: usize| line.split('"').nth(2 * nth + 1).map(str::to_owned);
    let mut renamed_into = Vec::new();
    for (at, line) in trace.lines().enumerate() {
        if line.contains("rename") && !line.contains("= -1") {
            let to = quoted(line, 1).unwrap();
            let dir = Path::new(&to)
                .parent()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            renamed_into.push((at, dir));
        }
    }
    assert!(
        !renamed_into.is_empty(),
        "the store renamed nothing:\n{trace}"
    );
    let lines: Vec<&str> = trace.lines().collect();
    let pid = |line: &str| line.split(' ').next().unwrap_or_default().to_owned();
    for (at, dir) in renamed_into {
        // The thread that renamed opens the directory, and its next traced call syncs that descriptor.
        let synced = (at..lines.len()).any(|o| {
            let open = lines[o];
            let fd = (pid(open) == pid(lines[at]) && open.contains("openat("))
                .then(|| quoted(open, 0))
                .flatten()
                .filter(|p| *p == dir)
                .and_then(|_| open.rsplit("= ").next()?.trim().parse::<i32>().ok());
            fd.is_some_and(|fd| {
                lines[o + 1..]
                    .iter()
                    .find(|l| pid(l) == pid(open))
                    .is_some_and(|l| l.contains(&format!("fsync({fd})")))
            })
        });
        assert!(synced, "{dir} was not synced after line {at}:\n{trace}");
    }
}
