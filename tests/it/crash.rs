//! `sentra run` as a separate process, killed with SIGKILL again and again at random moments while a stream
//! of 50,000 messages (some hostile) arrives, and restarted each time: ClickHouse must hold every message
//! exactly once, as an event or a quarantine row, and the signals must be byte for byte those of a run that
//! was never interrupted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickhouse::Client;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;

use crate::kafka_clickhouse::{count, create_topic, signal_docs, Env, Msg};

/// Messages in the stream.
const MESSAGES: usize = 50_000;

/// Kills before the run is left to finish.
const KILLS: usize = 10;

/// A small deterministic generator (xorshift), seeded per run and printed, so a failure can be replayed
/// with `SENTRA_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The stream: two tenants' ordinary sshd and sudo traffic in event-time order, a brute force every 500
/// messages, and a hostile message every 97th (broken JSON, no tenant, an invalid tenant, oversized,
/// invalid UTF-8).
fn stream() -> Vec<Msg> {
    let start = 1_773_446_400i64; // 2026-03-14T00:00:00Z
    let mut msgs = Vec::with_capacity(MESSAGES);
    let mut i = 0usize;
    while msgs.len() < MESSAGES {
        let secs = start + (i as i64) * 2;
        let t = chrono_like(secs);
        let tenant = if i % 3 == 0 { "globex" } else { "acme" };
        let n = msgs.len();
        let msg = if n % 97 == 96 {
            hostile(n, &t)
        } else if n % 500 < 8 {
            // A burst of failed passwords from one source per 500 messages.
            let ip = format!("203.0.{}.{}", (n / 500) % 250, 7);
            line(
                tenant_of_burst(n),
                &format!(
                    "{t} bastion-{} sshd[{n}]: Failed password for root from {ip} port {} ssh2",
                    n % 3,
                    40000 + n % 1000
                ),
            )
        } else {
            match i % 4 {
                0 => line(tenant, &format!("{t} web-{} sshd[{n}]: Accepted publickey for deploy from 10.0.{}.{} port 22 ssh2: RSA SHA256:x", n % 5, n % 7, n % 200)),
                1 => line(tenant, &format!("{t} web-{} sshd[{n}]: Connection closed by 10.0.0.{} port 22", n % 5, n % 250)),
                2 => line(tenant, &format!("{t} db-{} sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl status nginx", n % 3)),
                _ => line(tenant, &format!("{t} web-{} sshd[{n}]: Failed password for invalid user u{} from 198.51.100.{} port 22 ssh2", n % 5, n % 40, n % 250)),
            }
        };
        msgs.push(msg);
        i += 1;
    }
    msgs
}

/// Bursts alternate between the tenants.
fn tenant_of_burst(n: usize) -> &'static str {
    if (n / 500) % 2 == 0 {
        "acme"
    } else {
        "globex"
    }
}

fn line(tenant: &'static str, text: &str) -> Msg {
    Msg {
        payload: text.as_bytes().to_vec(),
        tenant: Some(tenant),
    }
}

fn hostile(n: usize, t: &str) -> Msg {
    match (n / 97) % 5 {
        0 => Msg {
            payload: b"{\"tenant\":\"acme\",\"message\":".to_vec(),
            tenant: None,
        },
        1 => Msg {
            payload: format!("{t} h sshd[1]: Connection closed by 1.2.3.4 port 1").into_bytes(),
            tenant: None,
        },
        2 => Msg {
            payload: format!("{t} h sshd[1]: Connection closed by 1.2.3.4 port 1").into_bytes(),
            tenant: Some("../../etc/passwd"),
        },
        3 => line("acme", &format!("{t} h sshd[1]: {}", "A".repeat(900))),
        _ => {
            let mut payload = format!("{t} web-1 sshd[{n}]: Invalid user ").into_bytes();
            payload.extend_from_slice(b"\xff\xfe\x1b[31m from 192.0.2.9 port 22");
            Msg {
                payload,
                tenant: Some("acme"),
            }
        }
    }
}

/// `secs` (within 2026-03-14 and the days after) as RFC 3339 in UTC.
fn chrono_like(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "2026-03-{:02}T{:02}:{:02}:{:02}Z",
        14 + days - 20_526,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Produces `msgs` in order, keeping many in flight.
async fn produce_all(brokers: &str, topic: &str, msgs: &[Msg]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("queue.buffering.max.messages", "200000")
        .set("linger.ms", "5")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    let mut pending = Vec::with_capacity(msgs.len());
    for m in msgs {
        let sent = producer.send_result(m.record(topic));
        pending.push(sent.map_err(|(e, _)| e).unwrap());
    }
    for p in pending {
        p.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// `sentra run --config <config>`, its log in `log`.
fn start(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_sentra"))
        .args(["run", "--config"])
        .arg(config)
        .env("SENTRA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Kills a child left running when a test fails.
struct Running(Option<Child>);

impl Running {
    fn signal(&mut self, sig: i32) {
        if let Some(c) = self.0.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
            let mut c = c;
            let _ = c.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

async fn final_count(ch: &Client, table: &str) -> u64 {
    ch.query(&format!("SELECT count() FROM {table} FINAL"))
        .fetch_one::<u64>()
        .await
        .unwrap_or(0)
}

/// Runs until ClickHouse holds all `MESSAGES` as events or quarantine rows, then stops it with SIGTERM.
async fn until_complete(run: &mut Running, ch: &Client, log: &Path, within: Duration) {
    let started = Instant::now();
    loop {
        let held = final_count(ch, "events").await + final_count(ch, "quarantine").await;
        if held >= MESSAGES as u64 {
            break;
        }
        assert!(
            started.elapsed() < within,
            "only {held} of {MESSAGES} messages stored; log: {}",
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Let the batch in flight finish its signals, then stop as an operator would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.signal(libc::SIGTERM);
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_ten_times_mid_stream_stores_every_message_once_and_the_same_signals() {
    let seed = std::env::var("SENTRA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed} (SENTRA_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();

    let mut killed = Env::new();
    killed.batch_max_messages = 1000;
    killed.checkpoint_interval_ms = 500;
    create_topic(&killed.brokers, &killed.topic).await;
    let msgs = stream();
    let killed_config = dir.path().join("killed.toml");
    std::fs::write(&killed_config, killed.toml()).unwrap();
    let log = dir.path().join("killed.log");

    // The stream arrives in ten parts, one per life of the run. Each life is ended by SIGKILL at a random
    // moment within 1.5 s of its first stored batch, so every kill lands mid-stream (a killed member cannot
    // leave its group, so a new life first waits for the broker to expire the old one).
    let ch = killed.clickhouse();
    let mut progress = Vec::new();
    let mut stored = 0;
    for part in msgs.chunks(MESSAGES / KILLS) {
        produce_all(&killed.brokers, &killed.topic, part).await;
        let mut run = Running(Some(start(&killed_config, &log)));
        let started = Instant::now();
        while count(&ch, "events").await <= stored {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "a restarted run made no progress; log: {}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
        run.signal(libc::SIGKILL);
        stored = count(&ch, "events").await;
        progress.push(stored);
    }
    eprintln!("events stored after each kill: {progress:?}");
    let mut run = Running(Some(start(&killed_config, &log)));
    until_complete(&mut run, &ch, &log, Duration::from_secs(240)).await;

    // Exactly once: every message is one event or one quarantine row, none lost, none doubled.
    let events = final_count(&ch, "events").await;
    let quarantined = final_count(&ch, "quarantine").await;
    assert_eq!(
        events + quarantined,
        MESSAGES as u64,
        "events {events} + quarantine {quarantined}"
    );
    let sources: u64 = ch
        .query("SELECT uniqExact(source) FROM (SELECT source FROM events FINAL UNION ALL SELECT source FROM quarantine FINAL)")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(sources, MESSAGES as u64, "a message stored under two ids");
    assert!(
        quarantined > 400,
        "the hostile messages are quarantined: {quarantined}"
    );

    // The same stream, never interrupted: same signals, byte for byte.
    let mut straight = Env::new();
    straight.topic = killed.topic.clone();
    straight.batch_max_messages = 1000;
    let straight_config = dir.path().join("straight.toml");
    std::fs::write(&straight_config, straight.toml()).unwrap();
    let straight_log = dir.path().join("straight.log");
    let sch = straight.clickhouse();
    let mut run = Running(Some(start(&straight_config, &straight_log)));
    until_complete(&mut run, &sch, &straight_log, Duration::from_secs(180)).await;
    let expected = signal_docs(&sch).await;
    assert!(
        expected.len() >= 50,
        "the stream raises many signals: {}",
        expected.len()
    );
    let got = signal_docs(&ch).await;
    assert_eq!(got.len(), expected.len(), "signal count");
    assert!(
        got == expected,
        "the killed run's signals differ from the uninterrupted run's"
    );
}
