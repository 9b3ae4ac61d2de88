//! Both stores together: Kafka → `sentra run` → ClickHouse (analytics) + Elasticsearch (forensics).
//!
//! Exactly-once storage under replay and consumer restart, rollups that agree with an independent count,
//! refused documents quarantined with the store's reason while their neighbours are stored, and stores
//! that go away for a while and come back without losing anything.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickhouse::{Client, Row};
use sentra_service::run::run;
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::{ElasticsearchConfig, ElasticsearchSink};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::kafka_clickhouse::{count, create_topic, produce, raw, run_until, Env, Msg};
use crate::support::{service, unique};

/// An Elasticsearch sink on `url` with its own index prefix (so tests never see each other's indices).
fn es_sink(url: &str, prefix: &str) -> ElasticsearchSink {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    ElasticsearchSink::new(ElasticsearchConfig {
        url: url.into(),
        index_prefix: prefix.into(),
        user: env("SENTRA_ELASTICSEARCH_USER"),
        password: env("SENTRA_ELASTICSEARCH_PASSWORD"),
        api_key: env("SENTRA_ELASTICSEARCH_API_KEY"),
        ..Default::default()
    })
    .unwrap()
}

fn es_section(url: &str, prefix: &str, categories: &[&str], timeout_secs: u64) -> String {
    format!(
        "[elasticsearch]\nurl = \"{url}\"\nindex_prefix = \"{prefix}\"\ncategories = {categories:?}\ntimeout_secs = {timeout_secs}\n"
    )
}

/// Every event id of `tenant` in the forensics store.
async fn es_ids(es: &ElasticsearchSink, tenant: &str) -> BTreeSet<String> {
    es.search(tenant, json!({"match_all": {}}), 10_000)
        .await
        .unwrap()
        .iter()
        .map(|d| d["event"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs the pipeline until `done` answers true (within 90 s), then stops it: for what the run's background
/// workers (the forensics indexer) store after the loop.
async fn run_until_done<F: std::future::Future<Output = bool>>(
    config: &sentra_service::config::Config,
    mut done: impl FnMut() -> F,
) -> sentra_service::run::RunStats {
    crate::support::log_to_test_output();
    let (tx, rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { run(&cfg, rx).await });
    let started = Instant::now();
    while !done().await {
        assert!(
            !task.is_finished(),
            "pipeline stopped early: {:?}",
            task.await
        );
        assert!(started.elapsed() < Duration::from_secs(90), "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tx.send(true).unwrap();
    task.await.unwrap().expect("pipeline ran without error")
}

/// The event ids Elasticsearch should hold for `tenant`: its signals' evidence and its events of `categories`.
async fn forensics_wanted(ch: &Client, tenant: &str, categories: &[&str]) -> BTreeSet<String> {
    let evidence: Vec<Vec<String>> = ch
        .query("SELECT evidence FROM signals FINAL WHERE tenant = ?")
        .bind(tenant)
        .fetch_all()
        .await
        .unwrap_or_default();
    let indexed: Vec<String> = ch
        .query("SELECT event_id FROM events FINAL WHERE tenant = ? AND category IN ?")
        .bind(tenant)
        .bind(categories)
        .fetch_all()
        .await
        .unwrap_or_default();
    evidence.into_iter().flatten().chain(indexed).collect()
}

async fn scalar(ch: &Client, sql: &str) -> u64 {
    ch.query(sql).fetch_one::<u64>().await.unwrap()
}

#[derive(Row, Deserialize, Debug, PartialEq)]
struct MinuteRollup {
    tenant: String,
    minute: u32,
    host: String,
    category: String,
    action: String,
    outcome: String,
    events: u64,
}

#[derive(Row, Deserialize, Debug, PartialEq)]
struct DayRollup {
    tenant: String,
    day: u16,
    signal: String,
    severity: String,
    signals: u64,
}

/// The rollup views must say exactly what an independent count over the deduplicated raw rows says.
async fn assert_rollups_match_raw(ch: &Client) {
    let keys = "tenant, minute, host, category, action, outcome";
    let view: Vec<MinuteRollup> = ch
        .query(&format!(
            "SELECT {keys}, events FROM events_per_minute ORDER BY {keys}"
        ))
        .fetch_all()
        .await
        .unwrap();
    let raw: Vec<MinuteRollup> = ch
        .query(&format!(
            "SELECT tenant, toStartOfMinute(timestamp) AS minute, host, category, action, outcome, \
             count() AS events FROM events FINAL GROUP BY {keys} ORDER BY {keys}"
        ))
        .fetch_all()
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert_eq!(view, raw, "events_per_minute disagrees with the raw events");
    let keys = "tenant, day, signal, severity";
    let view: Vec<DayRollup> = ch
        .query(&format!(
            "SELECT {keys}, signals FROM signals_per_day ORDER BY {keys}"
        ))
        .fetch_all()
        .await
        .unwrap();
    let raw: Vec<DayRollup> = ch
        .query(&format!(
            "SELECT tenant, toDate(window_start) AS day, signal, severity, count() AS signals \
             FROM signals FINAL GROUP BY {keys} ORDER BY {keys}"
        ))
        .fetch_all()
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert_eq!(view, raw, "signals_per_day disagrees with the raw signals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_hold_every_event_once_after_replay_and_restart() {
    let mut env = Env::new();
    let es_url = service("SENTRA_TEST_ES_URL");
    let prefix = unique("it-events").replace('_', "-");
    // Only IAM events are indexed in full here, so the authentication events in Elasticsearch are exactly
    // the signals' evidence, most of it from earlier batches (fetched back from ClickHouse).
    env.extra_toml = es_section(&es_url, &prefix, &["iam"], 30);
    env.batch_max_messages = 4;
    create_topic(&env.brokers, &env.topic).await;
    let mut msgs: Vec<Msg> = (0..6)
        .map(|i| raw("acme", &format!("2026-03-14T09:14:0{i}Z bastion-1 sshd[31{i}]: Failed password for root from 203.0.113.7 port 4010{i} ssh2")))
        .collect();
    msgs.push(raw("acme", "2026-03-14T09:14:30Z bastion-1 useradd[77]: new user: name=backdoor, UID=1001, GID=1001, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0"));
    msgs.push(raw(
        "acme",
        "2026-03-14T09:14:40Z bastion-1 sshd[9]: Connection closed by 10.0.0.1 port 22",
    ));
    msgs.push(raw(
        "globex",
        "2026-03-14T09:15:00Z db-1 sshd[5]: Failed password for bob from 198.51.100.4 port 22 ssh2",
    ));
    msgs.push(raw(
        "globex",
        "2026-03-14T09:16:00Z db-1 sshd[5]: Failed password for bob from 198.51.100.4 port 22 ssh2",
    ));
    msgs.push(raw("acme", "2026-03-14T09:30:00Z bastion-1 sshd[400]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"));
    produce(&env.brokers, &env.topic, &msgs).await;
    let total = msgs.len() as u64;

    let ch = env.clickhouse();
    let es = es_sink(&es_url, &prefix);
    let stats = run_until_done(&env.config(), || async {
        count(&ch, "events").await >= total
            && count(&ch, "signals").await >= 2
            && es.count("acme").await.unwrap_or(0) >= 1
            && es_ids(&es, "acme").await == forensics_wanted(&ch, "acme", &["iam"]).await
    })
    .await;
    assert_eq!((stats.consumed, stats.events), (total, total), "{stats:?}");

    // Forensics holds the IAM event plus every evidence event, and nothing else, under the right tenant.
    let want = forensics_wanted(&ch, "acme", &["iam"]).await;
    assert!(want.len() > 1);
    assert_eq!(es_ids(&es, "acme").await, want);
    // The brute force's evidence came from the first batch, two batches before its window closed.
    let auth = es
        .search(
            "acme",
            json!({"term": {"event.category": "authentication"}}),
            100,
        )
        .await
        .unwrap();
    assert!(!auth.is_empty(), "evidence was fetched back and indexed");
    assert!(es_ids(&es, "globex").await.is_empty());
    // An event may be queued twice (indexed category, then evidence of a later signal); indexed once.
    assert!(
        stats.stored["the forensics queue"] >= want.len() as u64,
        "{stats:?}"
    );
    let signals = scalar(&ch, "SELECT count() FROM signals FINAL").await;
    assert_rollups_match_raw(&ch).await;

    // Replay the same input (a new consumer group from the start, same stores): nothing is counted twice.
    let mut replay = Env::new();
    replay.topic = env.topic.clone();
    replay.database = env.database.clone();
    replay.extra_toml = env.extra_toml.clone();
    let stats = run_until(&replay.config(), &ch, 2 * total, signals).await;
    assert_eq!(stats.consumed, total, "{stats:?}");
    assert_eq!(
        scalar(&ch, "SELECT count() FROM events").await,
        2 * total,
        "the replay did write every row again"
    );
    assert_eq!(scalar(&ch, "SELECT count() FROM events FINAL").await, total);
    assert_eq!(
        scalar(&ch, "SELECT uniqExact(event_id) FROM events").await,
        total
    );
    assert_eq!(
        scalar(&ch, "SELECT count() FROM signals FINAL").await,
        signals
    );
    assert_eq!(es.count("acme").await.unwrap(), want.len() as u64);
    assert_rollups_match_raw(&ch).await;

    // A restart of the original group reads only what is new.
    let more = [raw("acme", "2026-03-14T09:31:00Z bastion-1 groupadd[78]: group added to /etc/group: name=devs, GID=1002")];
    produce(&env.brokers, &env.topic, &more).await;
    let stats = run_until_done(&env.config(), || async {
        count(&ch, "events").await > 2 * total
            && es.count("acme").await.unwrap_or(0) > want.len() as u64
    })
    .await;
    assert_eq!((stats.consumed, stats.events), (1, 1), "{stats:?}");
    assert_eq!(
        scalar(&ch, "SELECT count() FROM events FINAL").await,
        total + 1
    );
    assert_eq!(es.count("acme").await.unwrap(), want.len() as u64 + 1);
    assert_rollups_match_raw(&ch).await;
}

#[derive(Row, Deserialize, Debug)]
struct QuarantineRow {
    tenant: String,
    reason: String,
    detail: String,
    source: String,
    original: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_are_quarantined_with_the_stores_reason_and_neighbours_stored() {
    let mut env = Env::new();
    let es_url = service("SENTRA_TEST_ES_URL");
    let prefix = unique("it-refusals").replace('_', "-");
    env.extra_toml = es_section(&es_url, &prefix, &["authentication", "iam", "process"], 30);
    create_topic(&env.brokers, &env.topic).await;

    // Each store is made to refuse one event: ClickHouse by a CHECK constraint on the user, Elasticsearch
    // by an index whose mapping cannot hold a user name in `user.effective.name` (sudo's run-as account).
    let sink = ClickHouseSink::new(env.config().clickhouse);
    sink.migrate().await.unwrap();
    env.clickhouse()
        .query("ALTER TABLE events ADD CONSTRAINT no_mallory CHECK user_name != 'mallory'")
        .execute()
        .await
        .unwrap();
    let index = format!("{prefix}-acme@2026.03");
    let mapping = json!({"mappings": {"properties": {"user": {"properties": {"effective": {"properties": {"name": {"type": "long"}}}}}}}});
    let mut curl = std::process::Command::new("curl");
    if let Ok(user) = std::env::var("SENTRA_ELASTICSEARCH_USER") {
        let password = std::env::var("SENTRA_ELASTICSEARCH_PASSWORD").unwrap_or_default();
        curl.arg("-u").arg(format!("{user}:{password}"));
    }
    let created = curl
        .args(["-sf", "-X", "PUT", "-H", "Content-Type: application/json"])
        .arg(format!("{es_url}/{index}"))
        .arg("-d")
        .arg(mapping.to_string())
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    let msgs = vec![
        raw("acme", "2026-03-14T10:00:01Z web-1 sshd[1]: Failed password for alice from 192.0.2.1 port 1 ssh2"),
        raw("acme", "2026-03-14T10:00:02Z web-1 sshd[2]: Failed password for mallory from 192.0.2.2 port 2 ssh2"),
        raw("acme", "2026-03-14T10:00:03Z web-1 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id"),
        raw("acme", "2026-03-14T10:00:04Z web-1 sshd[4]: Failed password for alice from 192.0.2.1 port 4 ssh2"),
    ];
    produce(&env.brokers, &env.topic, &msgs).await;
    let ch = env.clickhouse();
    // ClickHouse refuses one event in the loop; the forensics indexer quarantines what Elasticsearch refuses.
    let es = es_sink(&es_url, &prefix);
    let stats = run_until_done(&env.config(), || async {
        count(&ch, "events").await >= 3 && count(&ch, "quarantine").await >= 2
    })
    .await;
    assert_eq!(
        (stats.consumed, stats.events, stats.quarantined),
        (4, 4, 1),
        "{stats:?}"
    );

    let users: Vec<String> = ch
        .query("SELECT user_name FROM events FINAL ORDER BY timestamp")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(users, ["alice", "alice", "alice"]);
    let indexed: Vec<String> = es
        .search("acme", json!({"match_all": {}}), 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d["user"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    // Elasticsearch holds what ClickHouse stored (mallory's event is in the quarantine) less what it refused.
    assert_eq!(indexed, ["alice", "alice"], "newest first");

    let q: Vec<QuarantineRow> = ch
        .query("SELECT ?fields FROM quarantine FINAL ORDER BY source")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(q.len(), 2, "{q:?}");
    let mallory = &q[0];
    assert_eq!(
        (mallory.tenant.as_str(), mallory.reason.as_str()),
        ("acme", "rejected")
    );
    assert!(
        mallory.detail.starts_with("ClickHouse refused event")
            && mallory.detail.contains("VIOLATED_CONSTRAINT"),
        "{}",
        mallory.detail
    );
    assert_eq!(mallory.original.as_bytes(), msgs[1].payload);
    assert_eq!(mallory.source, format!("kafka:{}:0:1", env.topic));
    let sudo = &q[1];
    assert!(
        sudo.detail.starts_with("Elasticsearch refused event")
            && sudo.detail.contains("mapper_parsing_exception"),
        "{}",
        sudo.detail
    );
    assert_eq!(sudo.original.as_bytes(), msgs[2].payload);
}

/// A private service process that a test may stop, freeze and restart without disturbing other tests.
pub(crate) struct Private {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Private {
    pub(crate) fn chdb(port: u16, data: &std::path::Path) -> Self {
        let child = Command::new(service("SENTRA_TEST_PYTHON"))
            .arg(service("SENTRA_TEST_CHDB_HTTP"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--data"])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self::ready(Self { child, port }, "/ping")
    }

    pub(crate) fn osmem(port: u16) -> Self {
        let child = Command::new(service("SENTRA_TEST_OSMEM_BIN"))
            .args(["-addr", &format!("127.0.0.1:{port}"), "-no-stdin-watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self::ready(Self { child, port }, "/")
    }

    fn ready(mut self, path: &str) -> Self {
        let started = Instant::now();
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "-m", "2"])
                .arg(format!("http://127.0.0.1:{}{path}", self.port))
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return self;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "service exited during startup"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "service not ready"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    pub(crate) fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_go_away_for_a_while_lose_nothing() {
    let data = tempfile::tempdir().unwrap();
    let ch_port = free_port();
    let clickhouse = Private::chdb(ch_port, data.path());
    let osmem = Private::osmem(free_port());
    let mut env = Env::new();
    env.clickhouse = clickhouse.url();
    env.batch_max_messages = 5;
    let prefix = unique("it-outage").replace('_', "-");
    env.extra_toml = es_section(&osmem.url(), &prefix, &["authentication"], 2);
    create_topic(&env.brokers, &env.topic).await;
    let line = |i: u32| {
        raw("acme", &format!("2026-03-14T11:{:02}:00Z web-1 sshd[{i}]: Failed password for u{i} from 192.0.2.{i} port 22 ssh2", i))
    };
    produce(
        &env.brokers,
        &env.topic,
        &(0..5).map(line).collect::<Vec<_>>(),
    )
    .await;

    let (tx, rx) = watch::channel(false);
    let config = env.config();
    let task = tokio::spawn(async move { run(&config, rx).await });
    let ch = env.clickhouse();
    let started = Instant::now();
    while count(&ch, "events").await < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // ClickHouse stops and Elasticsearch hangs; meanwhile more events arrive.
    clickhouse.stop();
    osmem.signal(libc::SIGSTOP);
    produce(
        &env.brokers,
        &env.topic,
        &(5..15).map(line).collect::<Vec<_>>(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!task.is_finished(), "the pipeline must wait, not give up");

    // Both come back (ClickHouse on the same port and data); the pipeline catches up.
    let clickhouse = Private::chdb(ch_port, data.path());
    osmem.signal(libc::SIGCONT);
    let started = Instant::now();
    while count(&ch, "events").await < 15 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the pipeline did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let es = es_sink(&osmem.url(), &prefix);
    while es.count("acme").await.unwrap() < 15 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "forensics did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(true).unwrap();
    let stats = task.await.unwrap().expect("pipeline ran without error");
    assert_eq!((stats.consumed, stats.events), (15, 15), "{stats:?}");
    assert_eq!(scalar(&ch, "SELECT count() FROM events FINAL").await, 15);
    assert_eq!(es_ids(&es, "acme").await.len(), 15);
    drop(clickhouse);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_differs_from_what_this_build_writes_stops_the_run_naming_the_column() {
    let env = Env::new();
    create_topic(&env.brokers, &env.topic).await;
    let sink = ClickHouseSink::new(env.config().clickhouse);
    sink.migrate().await.unwrap();
    // Someone widened a column by hand: rows written as this build lays them out would no longer line up.
    env.clickhouse()
        .query("ALTER TABLE events MODIFY COLUMN source_port Nullable(UInt32)")
        .execute()
        .await
        .unwrap();
    let line =
        "2026-03-14T10:00:01Z web-1 sshd[1]: Failed password for alice from 192.0.2.1 port 1 ssh2";
    produce(&env.brokers, &env.topic, &[raw("acme", line)]).await;
    let (_tx, rx) = watch::channel(false);
    let err = tokio::time::timeout(Duration::from_secs(60), run(&env.config(), rx))
        .await
        .expect("the run stops by itself")
        .expect_err("the insert is refused");
    let text = err.to_string();
    assert!(text.contains("source_port"), "{text}");
    assert_eq!(count(&env.clickhouse(), "events").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elasticsearch_outage_holds_back_only_forensics() {
    let osmem = Private::osmem(free_port());
    let mut env = Env::new();
    env.batch_max_messages = 4;
    let prefix = unique("it-es-down").replace('_', "-");
    env.extra_toml = es_section(&osmem.url(), &prefix, &["authentication"], 2);
    create_topic(&env.brokers, &env.topic).await;
    // Elasticsearch hangs from the start: connections open, nothing answers.
    osmem.signal(libc::SIGSTOP);
    let mut msgs: Vec<Msg> = (0..6)
        .map(|i| raw("acme", &format!("2026-03-14T09:14:0{i}Z bastion-1 sshd[31{i}]: Failed password for root from 203.0.113.7 port 4010{i} ssh2")))
        .collect();
    msgs.push(raw("acme", "2026-03-14T09:30:00Z bastion-1 sshd[400]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"));
    produce(&env.brokers, &env.topic, &msgs).await;

    let (tx, rx) = watch::channel(false);
    let config = env.config();
    let task = tokio::spawn(async move { run(&config, rx).await });
    // Events and the brute force's signal reach ClickHouse while Elasticsearch is down.
    let ch = env.clickhouse();
    let started = Instant::now();
    while count(&ch, "events").await < 7 || count(&ch, "signals").await < 1 {
        assert!(!task.is_finished(), "the pipeline stopped");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "events and signals waited for Elasticsearch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // When it answers again, forensics catches up with everything queued meanwhile.
    osmem.signal(libc::SIGCONT);
    let es = es_sink(&osmem.url(), &prefix);
    let started = Instant::now();
    while es.count("acme").await.unwrap_or(0) < 7 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "forensics did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tx.send(true).unwrap();
    task.await.unwrap().expect("pipeline ran without error");
    assert_eq!(es_ids(&es, "acme").await.len(), 7);
}
