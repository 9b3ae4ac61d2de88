//! The query router over the embedded store: analyst questions in varied wording, each checked for the
//! engine and the exact answer, computed independently from `sentra normalize` / `sentra replay` output;
//! and an adversarial suite that tries to reach another tenant's rows or leak internals.

use std::collections::BTreeMap;

use sentra_queries::{ask, AskError, Store};
use sentra_schemas::TenantId;
use serde_json::Value;

use crate::support::{get_json, replay_stored, sentra, stdout};

/// 2026-03-15T00:00:00Z: "now" for every question.
const NOW: i64 = 1_773_532_800_000_000;

pub(crate) struct Data {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
    events: Vec<Value>,
    pub(crate) signals: Vec<Value>,
}

pub(crate) fn setup() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth.log");
    let out = replay_stored("acme", &data, sample);
    assert!(out.status.success(), "{out:?}");
    let signals: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Another tenant with its own, recognisable data: none of it may ever reach acme's answers.
    let globex = dir.path().join("globex.log");
    let lines: String = (0..5)
        .map(|i| format!("Mar 14 09:14:0{i} gx-db-1 sshd[9{i}]: Failed password for gadmin from 198.18.0.1 port 4{i} ssh2\n"))
        .collect();
    std::fs::write(&globex, lines).unwrap();
    let out = replay_stored("globex", &data, globex.to_str().unwrap());
    assert!(out.status.success(), "{out:?}");
    let out = sentra(&["normalize", "--tenant", "acme", "--year", "2026", sample]);
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Data {
        _dir: dir,
        store: Store::Embedded(data),
        events,
        signals,
    }
}

fn field<'a>(e: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(e, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn count(d: &Data, keep: impl Fn(&Value) -> bool) -> u64 {
    d.events.iter().filter(|e| keep(e)).count() as u64
}

fn failed_auth(e: &Value) -> bool {
    field(e, "event.category") == Some("authentication")
        && field(e, "event.outcome") == Some("failure")
}

fn top(d: &Data, keep: impl Fn(&Value) -> bool, key: &str, n: usize) -> Vec<(String, u64)> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for e in d.events.iter().filter(|e| keep(e)) {
        if let Some(k) = field(e, key) {
            *by.entry(k.to_owned()).or_default() += 1;
        }
    }
    let mut v: Vec<(String, u64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

async fn q(d: &Data, question: &str) -> sentra_queries::Answer {
    ask(&d.store, &TenantId::new("acme").unwrap(), question, NOW)
        .await
        .unwrap_or_else(|e| panic!("{question}: {e}"))
}

fn n(a: &sentra_queries::Answer, col: &str) -> u64 {
    a.rows[0][col].as_u64().unwrap()
}

fn pairs(a: &sentra_queries::Answer) -> Vec<(String, u64)> {
    let (k, c) = (&a.columns[0], &a.columns[1]);
    a.rows
        .iter()
        .map(|r| (r[k].as_str().unwrap().to_owned(), r[c].as_u64().unwrap()))
        .collect()
}

fn signal_ids(d: &Data, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut v: Vec<&Value> = d.signals.iter().filter(|s| keep(s)).collect();
    v.sort_by(|a, b| {
        b["risk_score"]
            .as_f64()
            .partial_cmp(&a["risk_score"].as_f64())
            .unwrap()
            .then(b["window_end"].as_str().cmp(&a["window_end"].as_str()))
            .then(a["id"].as_str().cmp(&b["id"].as_str()))
    });
    v.iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(a: &sentra_queries::Answer) -> Vec<String> {
    a.rows
        .iter()
        .map(|r| r["signal_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyst_questions_get_exact_answers_from_the_embedded_store() {
    let d = setup();
    let failed = count(&d, failed_auth);
    assert!(failed > 20, "the sample has a brute force and a spray");

    // Counts, in several wordings.
    for question in [
        "how many failed logins?",
        "How many failed logins were there yesterday?",
        "count of failed authentication attempts on 2026-03-14",
        "number of login failures in the last 24 hours",
        "total failed ssh logins since 2026-03-01",
        "How many bad passwords in the past 7 days",
    ] {
        let a = q(&d, question).await;
        assert_eq!(
            (a.engine, n(&a, "events")),
            ("embedded", failed),
            "{question}"
        );
    }
    let succeeded = count(&d, |e| {
        field(e, "event.category") == Some("authentication")
            && field(e, "event.outcome") == Some("success")
    });
    for question in [
        "how many successful logins?",
        "count accepted logins today or yesterday",
    ] {
        assert_eq!(n(&q(&d, question).await, "events"), succeeded, "{question}");
    }
    let root_failed = count(&d, |e| {
        failed_auth(e)
            && (field(e, "user.name") == Some("root")
                || field(e, "user.target.name") == Some("root")
                || field(e, "user.effective.name") == Some("root"))
    });
    for question in [
        "how many failed logins for root?",
        "failed logins for user root: how many",
        "Number of failed logins targeting root",
    ] {
        assert_eq!(
            n(&q(&d, question).await, "events"),
            root_failed,
            "{question}"
        );
    }
    let from_ip = count(&d, |e| {
        failed_auth(e) && field(e, "source.ip") == Some("203.0.113.7")
    });
    for question in [
        "how many failed logins from 203.0.113.7?",
        "how many failed logins from 203.0.113.0/24",
        "count failures from 203.0.0.0/16 yesterday",
    ] {
        assert_eq!(n(&q(&d, question).await, "events"), from_ip, "{question}");
    }
    assert_eq!(
        n(
            &q(&d, "how many failed logins from 10.99.0.0/16?").await,
            "events"
        ),
        0
    );
    let sudo = count(&d, |e| field(e, "process.name") == Some("sudo"));
    assert_eq!(n(&q(&d, "how many sudo events?").await, "events"), sudo);
    let sudo_failed = count(&d, |e| {
        field(e, "process.name") == Some("sudo") && field(e, "event.outcome") == Some("failure")
    });
    assert_eq!(
        n(&q(&d, "how many failed sudo attempts?").await, "events"),
        sudo_failed
    );
    let on_host = count(&d, |e| {
        failed_auth(e) && field(e, "host.name") == Some("bastion-1")
    });
    for question in [
        "how many failed logins on bastion-1?",
        "failed logins on host bastion-1, how many",
    ] {
        assert_eq!(n(&q(&d, question).await, "events"), on_host, "{question}");
    }
    assert_eq!(
        n(&q(&d, "how many failed logins last week?").await, "events"),
        failed
    );
    assert_eq!(
        n(
            &q(&d, "how many failed logins on 2026-03-10").await,
            "events"
        ),
        0,
        "a day without data"
    );

    // Top-N.
    let top_ips = top(&d, failed_auth, "source.ip", 5);
    for question in [
        "top 5 source IPs with failed logins",
        "Which source IPs had the most failed logins? top 5",
        "top 5 attackers by failed logins yesterday",
    ] {
        let a = q(&d, question).await;
        assert_eq!(pairs(&a), top_ips, "{question}");
        assert!(a.summary.contains(&top_ips[0].0), "{}", a.summary);
    }
    let top_users = top(&d, failed_auth, "user.name", 3);
    for question in [
        "top 3 users with failed logins",
        "which users had the most failed logins? top 3",
    ] {
        assert_eq!(pairs(&q(&d, question).await), top_users, "{question}");
    }
    let top_hosts = top(&d, failed_auth, "host.name", 10);
    assert_eq!(pairs(&q(&d, "failed logins by host").await), top_hosts);

    // Trends.
    let a = q(&d, "trend of failed logins per hour on 2026-03-14").await;
    let total: u64 = a.rows.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(total, failed);
    let nine = count(&d, |e| {
        failed_auth(e)
            && e["@timestamp"]
                .as_str()
                .unwrap()
                .starts_with("2026-03-14T09")
    });
    assert!(a
        .rows
        .iter()
        .any(|r| r["bucket"] == "2026-03-14T09:00:00Z" && r["events"].as_u64() == Some(nine)));
    let daily = q(&d, "daily failed logins over the last week").await;
    assert_eq!(daily.rows.len(), 1);
    assert_eq!(daily.rows[0]["bucket"], "2026-03-14T00:00:00Z");

    // Listing raw events.
    let a = q(&d, "show the last 3 failed logins for root").await;
    assert_eq!(a.rows.len() as u64, 3.min(root_failed));
    assert!(a.rows.iter().all(|r| r["outcome"] == "failure"));
    let a = q(&d, "list sudo events").await;
    assert_eq!(a.rows.len() as u64, sudo.min(10));
    let times: Vec<&str> = a.rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // Signals.
    let all = signal_ids(&d, |_| true);
    assert_eq!(
        ids(&q(&d, "show me all signals").await),
        all.iter().take(10).cloned().collect::<Vec<_>>()
    );
    let high = signal_ids(&d, |s| {
        matches!(s["severity"].as_str(), Some("HIGH" | "CRITICAL"))
    });
    for question in [
        "which signals were high or critical?",
        "list high and critical alerts",
        "show CRITICAL or high severity detections",
    ] {
        assert_eq!(ids(&q(&d, question).await), high, "{question}");
    }
    let brute = signal_ids(&d, |s| s["signal"] == "ssh_brute_force");
    for question in [
        "list brute force signals",
        "any brute-force detections yesterday?",
        "show signals tagged T1110.001",
    ] {
        assert_eq!(ids(&q(&d, question).await), brute, "{question}");
    }
    let t1110 = signal_ids(&d, |s| {
        s["mitre"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["technique"].as_str().unwrap().starts_with("T1110"))
    });
    assert_eq!(ids(&q(&d, "signals for T1110").await), t1110);
    let privesc = signal_ids(&d, |s| s["intent"] == "Privilege Escalation");
    assert_eq!(ids(&q(&d, "privilege escalation signals").await), privesc);
    let spray = signal_ids(&d, |s| s["signal"] == "ssh_password_spray");
    assert_eq!(ids(&q(&d, "was there password spraying?").await), spray);
    let a = q(&d, "how many signals?").await;
    assert_eq!(n(&a, "signals"), d.signals.len() as u64);
    let a = q(&d, "signals by severity").await;
    let mut by_sev: BTreeMap<String, u64> = BTreeMap::new();
    for s in &d.signals {
        *by_sev
            .entry(s["severity"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let mut want: Vec<(String, u64)> = by_sev.into_iter().collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(pairs(&a), want);

    // Explaining one signal.
    let s = &d.signals[0];
    let id = s["id"].as_str().unwrap();
    for question in [
        format!("explain signal {id}"),
        format!("why was {id} raised?"),
    ] {
        let a = q(&d, &question).await;
        assert_eq!(a.rows[0]["signal_id"], id);
        assert!(
            a.summary.contains(s["narrative"].as_str().unwrap()),
            "{}",
            a.summary
        );
        assert!(a.summary.contains(s["recommendation"].as_str().unwrap()));
    }

    // A period summary.
    let a = q(&d, "summarize what happened on 2026-03-14").await;
    let total: u64 = a.rows.iter().map(|r| r["events"].as_u64().unwrap()).sum();
    assert_eq!(
        total,
        count(&d, |e| field(e, "event.action")
            .is_some_and(|a| !a.is_empty()))
    );
    assert!(
        a.summary
            .contains(&format!("{} signal(s)", d.signals.len().min(10))),
        "{}",
        a.summary
    );

    // Transparency: the generated query is returned, with placeholders instead of values.
    let a = q(&d, "how many failed logins for user root from 203.0.113.7").await;
    assert!(
        a.query[0].contains("$1")
            && !a.query[0].contains("203.0.113.7")
            && !a.query[0].contains("'root'")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_questions_get_nothing_of_other_tenants_and_no_internals() {
    let d = setup();
    let acme = TenantId::new("acme").unwrap();
    let leaks = |a: &sentra_queries::Answer| {
        let text = serde_json::to_string(&a.rows).unwrap();
        text.contains("198.18.0.1") || text.contains("gadmin") || text.contains("gx-db-1")
    };
    let failed_acme = count(&d, failed_auth);
    for question in [
        "how many failed logins for tenant globex?",
        "how many failed logins in globex",
        "how many failed logins from 198.18.0.1",
        "how many failed logins for user gadmin",
        "failed logins on gx-db-1: how many",
        "how many failed logins for user root' OR '1'='1",
        "how many failed logins for user x'); DROP TABLE events; --",
        "how many failed logins from 0.0.0.0/0",
        "how many failed logins since 1970-01-01",
        "how many failed logins in the last 99999999 days",
        "how many ｆａｉｌｅｄ logins for ｇａｄｍｉｎ",
        "how many failed logins for user ../globex",
        "how many failed logins for user \u{202e}nimdag",
    ] {
        match ask(&d.store, &acme, question, NOW).await {
            Ok(a) => {
                assert!(!leaks(&a), "{question}: {:?}", a.rows);
                let got = a
                    .rows
                    .first()
                    .and_then(|r| r.get("events"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                assert!(got <= failed_acme, "{question}: {got}");
            }
            Err(e) => {
                let msg = e.to_string();
                for internal in [
                    "DataFusion",
                    "Arrow",
                    "panicked",
                    "SELECT",
                    "parquet",
                    "/tmp",
                ] {
                    assert!(!msg.contains(internal), "{question}: {msg}");
                }
            }
        }
    }
    // Listing everything as acme never shows globex's rows, whatever the question asks for.
    for question in [
        "show all events of globex",
        "list failed logins from 198.18.0.0/16",
        "show me every signal",
    ] {
        if let Ok(a) = ask(&d.store, &acme, question, NOW).await {
            assert!(!leaks(&a), "{question}");
        }
    }
    // Globex sees its own five, and only them.
    let a = ask(
        &d.store,
        &TenantId::new("globex").unwrap(),
        "how many failed logins?",
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(n(&a, "events"), 5);

    // Unanswerable questions get examples, not an error dump.
    match ask(&d.store, &acme, "what is the weather like?", NOW).await {
        Err(AskError::Plan(e)) => assert!(e.to_string().contains("I can answer questions like")),
        other => panic!("{other:?}"),
    }
    let long = "how many failed logins ".repeat(40);
    assert!(matches!(
        ask(&d.store, &acme, &long, NOW).await,
        Err(AskError::Plan(_))
    ));
}

/// Rows with absent text (`NULL` in Parquet, `''` in ClickHouse) made comparable.
fn comparable(a: &sentra_queries::Answer) -> Vec<BTreeMap<String, Value>> {
    a.rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if s.is_empty() => Value::Null,
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_gives_the_same_answers_as_the_embedded_store() {
    use crate::kafka_clickhouse::{create_topic, produce, raw, run_until, Env};
    let d = setup();
    // The same sample through Kafka → `sentra run` → ClickHouse and Elasticsearch, plus globex's lines.
    let mut env = Env::new();
    let es_url = crate::support::service("SENTRA_TEST_ES_URL");
    let prefix = crate::support::unique("it-query").replace('_', "-");
    env.extra_toml = format!("[elasticsearch]\nurl = \"{es_url}\"\nindex_prefix = \"{prefix}\"\n");
    create_topic(&env.brokers, &env.topic).await;
    let sample =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/auth.log")).unwrap();
    let mut msgs: Vec<_> = sample.lines().map(|l| raw("acme", l)).collect();
    let globex: Vec<String> = (0..5)
        .map(|i| format!("Mar 14 09:14:0{i} gx-db-1 sshd[9{i}]: Failed password for gadmin from 198.18.0.1 port 4{i} ssh2"))
        .collect();
    msgs.extend(globex.iter().map(|l| raw("globex", l)));
    // A late heartbeat per tenant closes every window, as the end of a replay does.
    msgs.push(raw(
        "acme",
        "Mar 15 00:30:00 bastion-1 sshd[1]: Connection closed by 10.0.0.1 port 22",
    ));
    msgs.push(raw(
        "globex",
        "Mar 15 00:30:00 gx-db-1 sshd[1]: Connection closed by 10.0.0.1 port 22",
    ));
    produce(&env.brokers, &env.topic, &msgs).await;
    let ch = env.clickhouse();
    run_until(
        &env.config(),
        &ch,
        msgs.len() as u64,
        d.signals.len() as u64,
    )
    .await;
    let store = Store::ClickHouse(Box::new(ch));
    let acme = TenantId::new("acme").unwrap();
    for question in [
        "how many failed logins?",
        "how many failed logins for user root from 203.0.113.0/24",
        "how many sudo events?",
        "top 5 source IPs with failed logins",
        "which users had the most failed logins? top 3",
        "failed logins by host",
        "trend of failed logins per hour on 2026-03-14",
        "which signals were high or critical?",
        "signals for T1110",
        "privilege escalation signals",
        "signals by severity",
        "how many signals?",
        "how many failed logins for tenant globex?",
        "how many failed logins from 198.18.0.1",
        "how many failed logins for user root' OR '1'='1",
        // The rest of the analyst suite, whose embedded answers are checked exactly above.
        "How many failed logins were there yesterday?",
        "count of failed authentication attempts on 2026-03-14",
        "number of login failures in the last 24 hours",
        "total failed ssh logins since 2026-03-01",
        "How many bad passwords in the past 7 days",
        "how many successful logins?",
        "count accepted logins today or yesterday",
        "how many failed logins for root?",
        "failed logins for user root: how many",
        "Number of failed logins targeting root",
        "how many failed logins from 203.0.113.7?",
        "how many failed logins from 203.0.113.0/24",
        "count failures from 203.0.0.0/16 yesterday",
        "how many failed logins from 10.99.0.0/16?",
        "how many failed sudo attempts?",
        "how many failed logins on bastion-1?",
        "failed logins on host bastion-1, how many",
        "how many failed logins last week?",
        "how many failed logins on 2026-03-10",
        "Which source IPs had the most failed logins? top 5",
        "top 5 attackers by failed logins yesterday",
        "top 3 users with failed logins",
        "daily failed logins over the last week",
        "show me all signals",
        "list high and critical alerts",
        "show CRITICAL or high severity detections",
        "list brute force signals",
        "any brute-force detections yesterday?",
        "show signals tagged T1110.001",
        "was there password spraying?",
        "summarize what happened on 2026-03-14",
        "top 10 hosts with failed logins",
        "how many failed logins between 2026-03-13 and 2026-03-14",
        "trend of signals per day",
        "how many new user events?",
        "how many password changes since 2026-03-01?",
    ] {
        let embedded = q(&d, question).await;
        let answer = ask(&store, &acme, question, NOW)
            .await
            .unwrap_or_else(|e| panic!("{question}: {e}"));
        assert_eq!(answer.engine, "clickhouse");
        assert_eq!(answer.intent, embedded.intent, "{question}");
        assert_eq!(comparable(&answer), comparable(&embedded), "{question}");
        assert!(
            answer.query[0].contains("tenant = {tenant:String}"),
            "{}",
            answer.query[0]
        );
    }
    // Raw-event listings go to the forensics store when there is one, with the same rows.
    let es =
        sentra_sinks::elasticsearch::ElasticsearchSink::new(env.config().elasticsearch).unwrap();
    let services = Store::services(env.clickhouse(), Some(es));
    let sorted = |a: &sentra_queries::Answer| {
        let mut rows = comparable(a);
        rows.sort_by_key(|r| serde_json::to_string(r).unwrap());
        rows
    };
    for question in [
        "list failed logins from 192.0.2.44",
        "show the last 20 failed logins for root",
        "show failed sudo attempts",
        "list failed logins on web-2",
        "list failed logins for tenant globex from 198.18.0.1",
        "list sudo failures for user mallory",
        "show failed logins from 203.0.113.0/24 on 2026-03-14, first 50",
    ] {
        let embedded = q(&d, question).await;
        let answer = ask(&services, &acme, question, NOW)
            .await
            .unwrap_or_else(|e| panic!("{question}: {e}"));
        assert_eq!(answer.engine, "elasticsearch", "{question}");
        assert_eq!(answer.columns, embedded.columns);
        assert_eq!(sorted(&answer), sorted(&embedded), "{question}");
        assert!(!answer.query[0].contains("globex"), "{}", answer.query[0]);
    }
    let a = ask(&services, &acme, "how many failed logins?", NOW)
        .await
        .unwrap();
    assert_eq!(a.engine, "clickhouse");

    let id = d.signals[0]["id"].as_str().unwrap();
    let a = ask(&store, &acme, &format!("explain signal {id}"), NOW)
        .await
        .unwrap();
    assert_eq!(a.rows[0]["signal_id"], id);
    // globex's own question, asked as acme through ClickHouse, finds nothing of globex.
    let a = ask(&store, &acme, "list failed logins from 198.18.0.0/16", NOW)
        .await
        .unwrap();
    assert!(a.rows.is_empty(), "{:?}", a.rows);

    // GET /v1/signals/{id} over the service stores: the signal and its evidence events from Elasticsearch.
    let brute = d
        .signals
        .iter()
        .find(|s| s["signal"] == "ssh_brute_force")
        .unwrap();
    let id = brute["id"].as_str().unwrap();
    let api_config =
        crate::support::api_config(&[("acme", "acme-key"), ("globex", "globex-key")], 100);
    let es =
        sentra_sinks::elasticsearch::ElasticsearchSink::new(env.config().elasticsearch).unwrap();
    let api = sentra_service::api::Api::new(
        &api_config,
        Store::services(env.clickhouse(), Some(es)),
        Some(env.config()),
    );
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let addr = sentra_service::api::serve(&api_config.listen, api, shutdown)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let body = get_json(&http, &format!("http://{addr}/v1/signals/{id}"), "acme-key").await;
    assert_eq!(body["signal"]["signal_id"], id);
    let evidence = body["evidence"]
        .as_array()
        .expect("evidence from Elasticsearch");
    assert!(!evidence.is_empty(), "{body}");
    for e in evidence {
        assert_eq!(e["organization"]["id"], "acme");
        assert_eq!(e["source"]["ip"], "203.0.113.7");
        assert_eq!(e["event"]["outcome"], "failure");
    }
    let r = http
        .get(format!("http://{addr}/v1/signals/{id}"))
        .header("X-API-Key", "globex-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "globex cannot see acme's signal");
}

/// A fake OpenAI-compatible endpoint answering every chat completion with the next scripted content
/// (`None`: HTTP 400).
async fn fake_llm(script: Vec<Option<String>>) -> String {
    use axum::{extract::State, routing::post, Json, Router};
    use std::sync::{Arc, Mutex};
    type Script = Arc<Mutex<std::collections::VecDeque<Option<String>>>>;
    async fn complete(
        State(s): State<Script>,
        Json(_req): Json<Value>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        match s.lock().unwrap().pop_front().flatten() {
            Some(content) => Json(serde_json::json!({
                "id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}]
            }))
            .into_response(),
            None => (axum::http::StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": {"message": "no", "type": "invalid_request_error"}}))).into_response(),
        }
    }
    let state: Script = Arc::new(Mutex::new(script.into()));
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_plan_is_used_only_when_valid_and_the_planner_falls_back_otherwise() {
    let d = setup();
    let acme = TenantId::new("acme").unwrap();
    let valid = serde_json::json!({
        "what": "count", "subject": "events",
        "filters": {"outcome": "failure", "category": "authentication"},
        "group_by": null, "limit": 10, "signal_id": null, "notes": []
    })
    .to_string();
    let mut hostile_ip: Value = serde_json::from_str(&valid).unwrap();
    hostile_ip["filters"]["ips"] = serde_json::json!(["1.2.3.4' OR 1=1 --"]);
    let mut other_tenant: Value = serde_json::from_str(&valid).unwrap();
    other_tenant["tenant"] = "globex".into();
    let url = fake_llm(vec![
        Some(valid),
        Some("SELECT * FROM events".into()),
        Some(hostile_ip.to_string()),
        Some(other_tenant.to_string()),
        None,
    ])
    .await;
    let llm = sentra_queries::llm::LlmPlanner::new(&url, "sk-test-not-a-secret", "fake-model");
    let failed = count(&d, failed_auth);
    for (i, expect_llm) in [true, false, false, false, false].into_iter().enumerate() {
        let a =
            sentra_queries::ask_with(&d.store, &acme, "how many failed logins?", NOW, Some(&llm))
                .await
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(n(&a, "events"), failed, "case {i}");
        let by_llm = a
            .intent
            .notes
            .iter()
            .any(|x| x.contains("language model, then validated"));
        assert_eq!(by_llm, expect_llm, "case {i}: {:?}", a.intent.notes);
    }
}
