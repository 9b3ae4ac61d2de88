//! The first end-to-end path against real services: Kafka (Tansu) → `sentra run` → ClickHouse (chDB), with
//! the quarantine topic, and a restart that must resume from the committed offset.

use std::time::{Duration, Instant};

use clickhouse::{Client, Row};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sentra_service::config::Config;
use sentra_service::run::{run, RunStats};
use serde::Deserialize;
use tokio::sync::watch;

use crate::support::{service, unique};

pub(crate) struct Env {
    pub(crate) brokers: String,
    pub(crate) clickhouse: String,
    pub(crate) topic: String,
    pub(crate) quarantine: String,
    pub(crate) group: String,
    pub(crate) database: String,
    pub(crate) checkpoint: std::path::PathBuf,
    pub(crate) batch_max_messages: usize,
    pub(crate) batch_max_bytes: usize,
    pub(crate) lateness_secs: u64,
    pub(crate) checkpoint_interval_ms: u64,
    /// `[clickhouse] compression`.
    pub(crate) compression: &'static str,
    pub(crate) max_clock_skew_secs: u64,
    /// `[input] max_message_bytes`.
    pub(crate) max_message_bytes: usize,
    /// The tenant the input topic is mapped to (`kafka.topic_tenants`); unset, the topic carries several.
    pub(crate) topic_tenant: Option<&'static str>,
    /// More configuration appended to the generated file (e.g. an `[elasticsearch]` section).
    pub(crate) extra_toml: String,
    _dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let id = unique("it");
        let dir = tempfile::tempdir().unwrap();
        Self {
            brokers: service("SENTRA_TEST_KAFKA"),
            clickhouse: service("SENTRA_TEST_CLICKHOUSE_URL"),
            topic: format!("events-{id}"),
            quarantine: format!("quarantine-{id}"),
            group: format!("sentra-{id}"),
            database: format!("sentra_{id}"),
            checkpoint: dir.path().join("checkpoint.json"),
            batch_max_messages: 5000,
            batch_max_bytes: 16 << 20,
            lateness_secs: 0,
            checkpoint_interval_ms: 5000,
            compression: "lz4",
            max_clock_skew_secs: 300,
            max_message_bytes: 512,
            topic_tenant: None,
            extra_toml: String::new(),
            _dir: dir,
        }
    }

    pub(crate) fn config(&self) -> Config {
        Config::from_toml(&self.toml(), crate::support::credentials())
            .expect("test config is valid")
    }

    /// The configuration file's text (for `sentra run --config` as a process).
    pub(crate) fn toml(&self) -> String {
        format!(
            r#"
            [kafka]
            brokers = "{brokers}"
            group_id = "{group}"
            topics = ["{topic}"]
            quarantine_topic = "{quarantine}"
            batch_max_wait_ms = 200
            batch_max_messages = {batch}
            batch_max_bytes = {batch_bytes}
            {tenancy}
            [clickhouse]
            url = "{clickhouse}"
            database = "{database}"
            compression = "{compression}"
            [input]
            max_message_bytes = {max_message_bytes}
            [detection]
            allowed_lateness_secs = {lateness}
            max_clock_skew_secs = {skew}
            checkpoint_path = "{checkpoint}"
            checkpoint_interval_ms = {interval}
            [audit]
            topic = "audit-{topic}"
            {extra}
            "#,
            brokers = self.brokers,
            group = self.group,
            topic = self.topic,
            quarantine = self.quarantine,
            batch = self.batch_max_messages,
            batch_bytes = self.batch_max_bytes,
            lateness = self.lateness_secs,
            clickhouse = self.clickhouse,
            database = self.database,
            checkpoint = self.checkpoint.display(),
            interval = self.checkpoint_interval_ms,
            compression = self.compression,
            skew = self.max_clock_skew_secs,
            extra = self.extra_toml,
            max_message_bytes = self.max_message_bytes,
            tenancy = match self.topic_tenant {
                Some(t) => format!("[kafka.topic_tenants]\n\"{}\" = \"{t}\"", self.topic),
                None => format!(
                    "multi_tenant_topics = [\"{}\"]\n[kafka.topic_tenants]\n\"unused-topic\" = \"initech\"",
                    self.topic
                ),
            },
        )
    }

    pub(crate) fn clickhouse(&self) -> Client {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let mut client = Client::default()
            .with_url(&self.clickhouse)
            .with_database(&self.database);
        if !env("SENTRA_CLICKHOUSE_USER").is_empty() {
            client = client
                .with_user(env("SENTRA_CLICKHOUSE_USER"))
                .with_password(env("SENTRA_CLICKHOUSE_PASSWORD"));
        }
        client
    }
}

/// One message to produce: payload and optional tenant header.
pub(crate) struct Msg {
    pub(crate) payload: Vec<u8>,
    pub(crate) tenant: Option<&'static str>,
}

impl Msg {
    /// The record for `topic`, with its tenant header.
    pub(crate) fn record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, (), [u8]> {
        let rec = FutureRecord::to(topic).payload(&self.payload[..]);
        match self.tenant {
            Some(t) => rec.headers(OwnedHeaders::new().insert(Header {
                key: "tenant",
                value: Some(t),
            })),
            None => rec,
        }
    }
}

pub(crate) fn raw(tenant: &'static str, line: &str) -> Msg {
    Msg {
        payload: line.as_bytes().to_vec(),
        tenant: Some(tenant),
    }
}

pub(crate) async fn create_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let r = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap();
    r.into_iter().for_each(|r| {
        r.unwrap();
    });
}

pub(crate) async fn produce(brokers: &str, topic: &str, msgs: &[Msg]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for m in msgs {
        producer
            .send(m.record(topic), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[derive(Row, Deserialize, Debug, PartialEq)]
struct EventRow {
    tenant: String,
    event_id: String,
    action: String,
    outcome: String,
    user_name: String,
    source_ip: String,
    host: String,
    source: String,
}

#[derive(Row, Deserialize, Debug, PartialEq)]
struct SignalRow {
    tenant: String,
    signal_id: String,
    signal: String,
    source_ip: String,
    count: u64,
    severity: String,
    mitre: Vec<String>,
}

pub(crate) async fn count(ch: &Client, table: &str) -> u64 {
    ch.query(&format!("SELECT count() FROM {table}"))
        .fetch_one::<u64>()
        .await
        .unwrap_or(0)
}

/// Runs the pipeline until `done` says the stores hold what they should, then shuts it down.
pub(crate) async fn run_until(config: &Config, ch: &Client, events: u64, signals: u64) -> RunStats {
    let (tx, rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { run(&cfg, rx).await });
    let started = Instant::now();
    loop {
        if count(ch, "events").await >= events && count(ch, "signals").await >= signals {
            break;
        }
        assert!(
            !task.is_finished(),
            "pipeline stopped early: {:?}",
            task.await
        );
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out waiting for {events} events"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let the batch in flight finish (its signals and commit) before stopping: wait until nothing changes.
    let mut last = (count(ch, "events").await, count(ch, "signals").await);
    loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let now = (count(ch, "events").await, count(ch, "signals").await);
        if now == last {
            break;
        }
        last = now;
    }
    tx.send(true).unwrap();
    task.await.unwrap().expect("pipeline ran without error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_to_clickhouse_with_quarantine_and_resume_from_committed_offsets() {
    crate::support::log_to_test_output();
    // No checkpoint falls due while the test runs: the one saved on shutdown is what the restart resumes from.
    let mut env = Env::new();
    env.checkpoint_interval_ms = 3_600_000;
    create_topic(&env.brokers, &env.topic).await;
    let config = env.config();

    let mut phase1: Vec<Msg> = (1..=6)
        .map(|i| raw("acme", &format!("2026-03-14T09:14:0{i}Z bastion-1 sshd[31{i}]: Failed password for root from 203.0.113.7 port 4010{i} ssh2")))
        .collect();
    phase1.push(Msg {
        payload: br#"{"tenant":"globex","host":"db-1","message":"2026-03-14T09:14:10Z db-1 sshd[9]: Accepted password for bob from 198.51.100.4 port 22 ssh2"}"#.to_vec(),
        tenant: None,
    });
    phase1.push(Msg {
        payload: br#"{"@timestamp":"2026-03-14T09:15:00Z","organization":{"id":"globex"},"host":{"name":"db-2"},"process":{"name":"sudo"},"message":"eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"}"#.to_vec(),
        tenant: None,
    });
    // Quarantine: no tenant anywhere, broken JSON, an invalid tenant header, oversized, dated far past its
    // reading. (Invalid UTF-8 is no reason: such a line is read lossily and kept escaped in `original`.)
    phase1.push(Msg {
        payload: b"2026-03-14T09:14:11Z h sshd[1]: Connection closed by 1.2.3.4 port 1".to_vec(),
        tenant: None,
    });
    phase1.push(Msg {
        payload: b"{\"tenant\":\"acme\",".to_vec(),
        tenant: None,
    });
    phase1.push(Msg {
        payload: b"2026-03-14T09:14:12Z h sshd[1]: Connection closed by 1.2.3.4 port 1".to_vec(),
        tenant: Some("../../etc"),
    });
    phase1.push(Msg {
        payload: format!("2026-03-14T09:14:13Z h sshd[1]: {}", "A".repeat(600)).into_bytes(),
        tenant: Some("acme"),
    });
    // Taken as event time, this would carry acme's watermark to 2099 and make the next event late.
    phase1.push(raw(
        "acme",
        "2099-01-01T00:00:00Z bastion-9 sshd[1]: Connection closed by 10.0.0.9 port 22",
    ));
    // A later acme event moves acme's watermark past the brute-force window, which closes and signals.
    phase1.push(raw("acme", "2026-03-14T09:20:00Z bastion-1 sshd[400]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"));
    produce(&env.brokers, &env.topic, &phase1).await;

    let ch = env.clickhouse();
    let stats = run_until(&config, &ch, 9, 1).await;
    assert_eq!(
        (
            stats.consumed,
            stats.events,
            stats.quarantined,
            stats.signals
        ),
        (14, 9, 5, 1),
        "{stats:?}"
    );
    assert_eq!(stats.late, 0, "{stats:?}");

    let rows: Vec<EventRow> = ch
        .query("SELECT ?fields FROM events FINAL ORDER BY length(source), source")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 9);
    for (i, r) in rows.iter().take(6).enumerate() {
        assert_eq!(
            (
                r.tenant.as_str(),
                r.action.as_str(),
                r.outcome.as_str(),
                r.user_name.as_str(),
                r.source_ip.as_str(),
                r.host.as_str()
            ),
            (
                "acme",
                "ssh_login",
                "failure",
                "root",
                "203.0.113.7",
                "bastion-1"
            )
        );
        let source = format!("kafka:{}:0:{i}", env.topic);
        assert_eq!(r.source, source);
        assert_eq!(
            r.event_id,
            sentra_schemas::event_id("acme", &phase1[i].payload, &source)
        );
    }
    let summary: Vec<(&str, &str, &str, &str)> = rows[6..]
        .iter()
        .map(|r| {
            (
                r.tenant.as_str(),
                r.action.as_str(),
                r.user_name.as_str(),
                r.host.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("globex", "ssh_login", "bob", "db-1"),
            ("globex", "sudo_not_in_sudoers", "eve", "db-2"),
            ("acme", "ssh_login", "deploy", "bastion-1"),
        ]
    );

    let signals: Vec<SignalRow> = ch
        .query("SELECT ?fields FROM signals FINAL")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(signals.len(), 1);
    let s = &signals[0];
    assert_eq!(
        (
            s.tenant.as_str(),
            s.signal.as_str(),
            s.source_ip.as_str(),
            s.count
        ),
        ("acme", "ssh_brute_force", "203.0.113.7", 6)
    );
    assert_eq!(
        (s.severity.as_str(), s.mitre.as_slice()),
        ("HIGH", &["T1110.001".to_owned()][..])
    );
    assert_eq!(s.signal_id.len(), 12);

    // Every quarantined message is on the quarantine topic with its reason and original bytes.
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .set("group.id", unique("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    dlq.subscribe(&[&env.quarantine]).unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        let m = tokio::time::timeout(Duration::from_secs(30), dlq.recv())
            .await
            .expect("quarantine message")
            .unwrap();
        let header = |k: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == k))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        got.push((
            header("sentra.reason").unwrap(),
            header("sentra.source_offset").unwrap(),
            m.payload().unwrap().to_vec(),
        ));
    }
    let expected = [
        ("no_tenant", 8usize),
        ("invalid_json", 9),
        ("invalid_tenant", 10),
        ("too_large", 11),
        ("future", 12),
    ];
    for ((reason, offset, payload), (want_reason, want_offset)) in got.iter().zip(expected) {
        assert_eq!(
            (reason.as_str(), offset.as_str()),
            (want_reason, want_offset.to_string().as_str())
        );
        assert_eq!(payload, &phase1[want_offset].payload);
    }

    // Restart: the second run must start at the committed offset, so it reads only the new messages.
    let phase2: Vec<Msg> = (0..5)
        .map(|i| raw("acme", &format!("2026-03-14T09:21:0{i}Z web-1 sshd[50{i}]: Accepted publickey for ci from 10.0.0.9 port 600{i} ssh2: RSA SHA256:y")))
        .collect();
    produce(&env.brokers, &env.topic, &phase2).await;
    let stats = run_until(&config, &ch, 14, 1).await;
    assert_eq!(
        (stats.consumed, stats.events, stats.quarantined),
        (5, 5, 0),
        "{stats:?}"
    );
    // No event was written twice (raw rows, before any ReplacingMergeTree merge).
    let dupes: Vec<String> = ch
        .query("SELECT event_id FROM events GROUP BY event_id HAVING count() > 1")
        .fetch_all()
        .await
        .unwrap();
    assert!(dupes.is_empty(), "duplicated events: {dupes:?}");
    assert_eq!(count(&ch, "events").await, 14);
}

/// Sorted signal documents: the byte-exact signal set.
pub(crate) async fn signal_docs(ch: &Client) -> Vec<String> {
    ch.query("SELECT doc FROM signals FINAL ORDER BY signal_id")
        .fetch_all::<String>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_mid_stream_yields_the_same_signals() {
    // A long allowed lateness keeps every window open until the final heartbeat, so all of the window
    // state must survive the kill.
    let mut straight = Env::new();
    straight.lateness_secs = 3600;
    create_topic(&straight.brokers, &straight.topic).await;
    // Attacks that straddle many small batches: brute force from four sources, a spray, sudo abuse in
    // another tenant, then a late heartbeat that closes every window.
    let mut msgs = Vec::new();
    for i in 0..60u32 {
        let ip = format!("203.0.113.{}", i % 2);
        let user = ["root", "admin", "oracle"][i as usize % 3];
        let line = format!("2026-03-16T10:{:02}:{:02}Z bastion-1 sshd[7]: Failed password for {user} from {ip} port 22 ssh2", i / 12, (i * 5) % 60);
        msgs.push(raw("acme", &line));
    }
    for i in 0..8u32 {
        msgs.push(raw("acme", &format!("2026-03-16T10:06:{:02}Z web-2 sshd[8]: Failed password for u{i} from 192.0.2.44 port 22 ssh2", i * 7)));
    }
    for i in 0..4u32 {
        msgs.push(raw("globex", &format!("2026-03-16T10:0{i}:30Z db-1 sudo: bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh")));
    }
    msgs.push(raw(
        "acme",
        "2026-03-16T12:00:00Z bastion-1 sshd[9]: Connection closed by 10.0.0.1 port 22",
    ));
    msgs.push(raw(
        "globex",
        "2026-03-16T12:00:00Z db-1 sshd[9]: Connection closed by 10.0.0.1 port 22",
    ));
    produce(&straight.brokers, &straight.topic, &msgs).await;
    let total = msgs.len() as u64;

    let ch = straight.clickhouse();
    run_until(&straight.config(), &ch, total, 1).await;
    let expected = signal_docs(&ch).await;
    assert!(
        expected.len() >= 4,
        "scenario should raise several signals: {expected:?}"
    );

    // Same topic, fresh group, store and checkpoint; small batches checkpointed every 200 ms, so the kill
    // after about a third (and after the first checkpoint) restores state and re-reads what followed it.
    let mut killed = Env::new();
    killed.topic = straight.topic.clone();
    killed.batch_max_messages = 7;
    killed.lateness_secs = 3600;
    killed.checkpoint_interval_ms = 200;
    let config = killed.config();
    let kch = killed.clickhouse();
    let (_tx, rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { run(&cfg, rx).await });
    let started = Instant::now();
    while count(&kch, "events").await < total / 3 || !killed.checkpoint.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "first run made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    assert!(
        count(&kch, "events").await < total,
        "the kill should land mid-stream"
    );
    run_until(&config, &kch, total, expected.len() as u64).await;
    assert_eq!(signal_docs(&kch).await, expected);
}

/// The group's committed offset of partition 0 of `env.topic`, if any.
fn committed(env: &Env) -> Option<i64> {
    let c: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .set("group.id", &env.group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(&env.topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).ok()?;
    match got.find_partition(&env.topic, 0)?.offset() {
        rdkafka::Offset::Offset(o) => Some(o),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_is_checkpointed_and_committed_when_the_interval_is_up() {
    let mut env = Env::new();
    env.checkpoint_interval_ms = 3000;
    // Inserts sent plain, the way a sentra next to its ClickHouse would send them.
    env.compression = "none";
    // Live lines, dated when sent, judged against a 1 s bound: each must be read at its arrival, not at the
    // start of a batch that waited through the quiet.
    env.max_clock_skew_secs = 1;
    create_topic(&env.brokers, &env.topic).await;
    let line = || {
        let now = sentra_schemas::time::now_us();
        let at = sentra_schemas::time::format_rfc3339_us(now);
        raw(
            "acme",
            &format!("{at} web-1 sshd[1]: Connection closed by 10.0.0.1 port 22"),
        )
    };
    let ch = env.clickhouse();
    let (tx, rx) = watch::channel(false);
    let cfg = env.config();
    let task = tokio::spawn(async move { run(&cfg, rx).await });
    let wait_for_commit = |offset: i64| {
        let started = Instant::now();
        loop {
            if committed(&env) == Some(offset) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "offset {offset} was not committed while no more input came (committed: {:?})",
                committed(&env)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Each batch is stored and then nothing more arrives: the timer, not a next batch, saves and commits it.
    produce(&env.brokers, &env.topic, &[line(), line(), line()]).await;
    tokio::task::block_in_place(|| wait_for_commit(3));
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce(&env.brokers, &env.topic, &[line(), line()]).await;
    tokio::task::block_in_place(|| wait_for_commit(5));
    assert_eq!(count(&ch, "events").await, 5);
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&env.checkpoint).unwrap()).unwrap();
    assert_eq!(saved["offsets"][format!("{}/0", env.topic)], 5);
    tx.send(true).unwrap();
    let stats = task.await.unwrap().expect("pipeline ran without error");
    assert_eq!(stats.consumed, 5, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stops_taking_messages_once_its_byte_cap_is_reached() {
    let mut env = Env::new();
    env.batch_max_bytes = 1024;
    create_topic(&env.brokers, &env.topic).await;
    // Ten messages of ~400 bytes, all waiting before the run starts: without the cap they are one batch.
    let now = sentra_schemas::time::format_rfc3339_us(sentra_schemas::time::now_us());
    let padding = "x".repeat(320);
    let msgs: Vec<Msg> = (0..10)
        .map(|i| {
            raw(
                "acme",
                &format!("{now} web-1 sshd[{i}]: Connection closed by 10.0.0.1 port 22 {padding}"),
            )
        })
        .collect();
    assert!(msgs.iter().all(|m| (380..420).contains(&m.payload.len())));
    produce(&env.brokers, &env.topic, &msgs).await;
    let ch = env.clickhouse();
    let stats = run_until(&env.config(), &ch, 10, 0).await;
    assert_eq!(stats.events, 10, "{stats:?}");
    // Three messages reach 1,024 bytes: 3 + 3 + 3 + 1 (more if a wait runs out, never fewer).
    assert!(stats.batches >= 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_syslog_is_read_in_the_tenants_time_zone() {
    let mut env = Env::new();
    env.extra_toml = "[tenants]\ntimezone = { acme = \"Asia/Tokyo\" }\n".into();
    create_topic(&env.brokers, &env.topic).await;
    // acme's host writes Tokyo time (UTC+9, no daylight saving) with no zone; initech's writes UTC.
    let line = |hours| {
        format!(
            "{} web-1 sshd[1]: Connection closed by 10.0.0.1 port 22",
            crate::support::classic_stamp_now(hours)
        )
    };
    let sent = sentra_schemas::time::now_us();
    produce(
        &env.brokers,
        &env.topic,
        &[raw("acme", &line(9)), raw("initech", &line(0))],
    )
    .await;
    let ch = env.clickhouse();
    // Wait for one: read as UTC, acme's line would be quarantined as `future`, not stored.
    let stats = run_until(&env.config(), &ch, 1, 0).await;
    assert_eq!((stats.events, stats.quarantined), (2, 0), "{stats:?}");
    let times: Vec<i64> = ch
        .query("SELECT toUnixTimestamp64Micro(timestamp) FROM events ORDER BY tenant")
        .fetch_all()
        .await
        .unwrap();
    for t in times {
        assert!(
            (t - sent).abs() < 5_000_000,
            "{t} is not within 5 s of {sent}"
        );
    }
}
