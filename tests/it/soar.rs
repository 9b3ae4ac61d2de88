//! The SOAR hand-off against a local HTTP receiver and the real broker: the envelope contract, headers and
//! signatures, a receiver that fails and rate-limits for a while, the dead-letter queue and its replay, and
//! a delivery worker killed with signals pending.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rdkafka::config::ClientConfig;
use sentra_schemas::{MitreTechnique, RiskFactor, Severity, Signal, TenantId};
use sentra_soar::queue::{self, WorkerStats};
use sentra_soar::{Deliverer, SoarConfig};
use serde_json::Value;
use tokio::sync::watch;

use crate::kafka_clickhouse::{create_topic, produce, raw, Env};
use crate::support::{service, unique};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    at: Instant,
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// What the receiver answers: first the planned responses in order, then `otherwise`.
#[derive(Default)]
pub(crate) struct Script {
    plan: VecDeque<(u16, Option<&'static str>)>,
    otherwise: u16,
    got: Vec<Received>,
}

pub(crate) type Receiver = Arc<Mutex<Script>>;

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mut s = r.lock().unwrap();
    let (status, retry_after) = s.plan.pop_front().unwrap_or((s.otherwise, None));
    s.got.push(Received {
        at: Instant::now(),
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    let mut out = HeaderMap::new();
    if let Some(secs) = retry_after {
        out.insert("Retry-After", secs.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, "ok")
}

pub(crate) async fn receiver(otherwise: u16) -> (String, Receiver) {
    let state: Receiver = Arc::new(Mutex::new(Script {
        otherwise,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

/// Signal ids the receiver acknowledged with 2xx.
pub(crate) fn delivered(r: &Receiver) -> BTreeSet<String> {
    r.lock()
        .unwrap()
        .got
        .iter()
        .filter(|g| (200..300).contains(&g.status))
        .map(|g| g.headers["x-sentra-signal-id"].clone())
        .collect()
}

pub(crate) fn signal(n: u32, tenant: &str, risk: f64) -> Signal {
    Signal {
        id: format!("{n:012x}"),
        signal: "ssh_brute_force".into(),
        tenant: TenantId::new(tenant).unwrap(),
        hosts: vec!["bastion-1".into()],
        user: Some("root".into()),
        ip: Some("203.0.113.7".into()),
        window_start: 1_773_479_640_000_000,
        window_end: 1_773_479_700_000_000,
        count: 6,
        risk_score: risk,
        severity: Severity::from_risk(risk),
        risk_factors: vec![RiskFactor {
            name: "base".into(),
            contribution: risk,
            detail: "test".into(),
        }],
        mitre: vec![MitreTechnique {
            technique: "T1110.001".into(),
            tactic: "Credential Access".into(),
        }],
        compliance: vec!["SOC2:CC6.1".into()],
        intent: "Credential Access".into(),
        narrative: "Six failed logins for root from one source.".into(),
        recommendation: "Check whether the source is expected; block it if not.".into(),
        evidence: vec![],
        suppressed: false,
        override_applied: None,
    }
}

struct Setup {
    client: ClientConfig,
    group: String,
    config: SoarConfig,
}

async fn setup(url: &str, max_attempts: u32) -> Setup {
    let brokers = service("SENTRA_TEST_KAFKA");
    let id = unique("soar");
    let config = SoarConfig {
        webhook: url.into(),
        api_key: "k-123".into(),
        signing_secret: "s3cret".into(),
        topic: format!("signals-{id}"),
        dlq_topic: format!("dlq-{id}"),
        max_attempts,
        initial_backoff_ms: 30,
        max_backoff_ms: 3000,
        timeout_secs: 5,
        rate_per_second: 100,
        ..Default::default()
    };
    create_topic(&brokers, &config.topic).await;
    create_topic(&brokers, &config.dlq_topic).await;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &brokers)
        .set("session.timeout.ms", "6000");
    Setup {
        client,
        group: format!("sentra-{id}"),
        config,
    }
}

impl Setup {
    async fn enqueue(&self, signals: &[Signal]) -> usize {
        let producer = sentra_kafka::Producer::new(&self.client).unwrap();
        let destinations = self.config.resolve(|_| None).unwrap();
        queue::enqueue(&producer, &self.config.topic, signals, &destinations)
            .await
            .unwrap()
    }

    /// Starts the default destination's delivery worker.
    fn worker(
        &self,
    ) -> (
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<WorkerStats, queue::QueueError>>,
    ) {
        let (tx, rx) = watch::channel(false);
        let destination = self.config.resolve(|_| None).unwrap().remove(0);
        let deliverer = Deliverer::new(destination, &self.config);
        let (client, group, config) =
            (self.client.clone(), self.group.clone(), self.config.clone());
        let task = tokio::spawn(async move {
            queue::deliver(&client, &group, &config, &deliverer, rx, None).await
        });
        (tx, task)
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_receiver_gets_every_signal_signed_and_as_the_contract_says() {
    let (url, rx) = receiver(200).await;
    rx.lock().unwrap().plan =
        VecDeque::from([(503, None), (503, None), (429, Some("1")), (500, None)]);
    let s = setup(&url, 10).await;
    let mut suppressed = signal(6, "acme", 0.9);
    suppressed.suppressed = true;
    let signals = [
        signal(1, "acme", 0.6),
        signal(2, "globex", 0.85),
        signal(3, "acme", 0.5),
        signal(4, "acme.eu", 0.7),
        signal(5, "acme", 0.3),
        suppressed,
    ];
    assert_eq!(
        s.enqueue(&signals).await,
        4,
        "low-risk and suppressed signals are not queued"
    );
    let (stop, task) = s.worker();
    let want: BTreeSet<String> = signals[..4].iter().map(|s| s.id.clone()).collect();
    wait_for("every signal", || delivered(&rx) == want).await;
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        (stats.delivered, stats.dead_lettered, stats.attempts),
        (4, 0, 8),
        "{stats:?}"
    );

    let schema: Value = serde_json::from_str(sentra_schemas::SOAR_ENVELOPE_JSON_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let got = rx.lock().unwrap().got.clone();
    assert_eq!(got.len(), 8);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for r in &got {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{body}");
        assert_eq!(body["event_type"], "sentra_security_signal");
        assert_eq!(body["timestamp_utc"], "2026-03-14T09:15:00Z");
        assert!(body["source"]
            .as_str()
            .unwrap()
            .starts_with("sentra-signal-engine-"));
        assert_eq!(
            body["data"]["id"].as_str().unwrap(),
            r.headers["x-sentra-signal-id"]
        );
        assert_eq!(body["data"]["user"], "root");
        assert_eq!(body["data"]["ip"], "203.0.113.7");
        assert_eq!(r.headers["x-api-key"], "k-123");
        assert_eq!(r.headers["content-type"], "application/json");
        let ts: i64 = r.headers["x-sentra-timestamp"].parse().unwrap();
        sentra_soar::signing::verify(
            b"s3cret",
            ts,
            &r.body,
            &r.headers["x-sentra-signature"],
            now,
            300,
        )
        .expect("signature verifies");
        assert!(sentra_soar::signing::verify(
            b"wrong",
            ts,
            &r.body,
            &r.headers["x-sentra-signature"],
            now,
            300
        )
        .is_err());
    }
    // The retry after the 429 waited for its Retry-After (1 s).
    let after_429 = got.iter().position(|r| r.status == 429).unwrap();
    assert!(got[after_429 + 1].at - got[after_429].at >= Duration::from_millis(950));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_past_the_budget_dead_letters_and_replay_delivers() {
    let (url, rx) = receiver(500).await;
    let s = setup(&url, 3).await;
    // The first request is refused outright (400): dead-lettered after one attempt.
    rx.lock().unwrap().plan = VecDeque::from([(400, None)]);
    let signals = [signal(11, "acme", 0.6), signal(12, "acme", 0.9)];
    s.enqueue(&signals).await;
    let (stop, task) = s.worker();
    wait_for("both signals to fail", || rx.lock().unwrap().got.len() >= 4).await;
    let mut letters = Vec::new();
    let started = Instant::now();
    while letters.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "dead letters never appeared"
        );
        letters = queue::dlq_list(&s.client, &s.group, &s.config, Duration::from_secs(1))
            .await
            .unwrap();
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(
        (stats.delivered, stats.dead_lettered, stats.attempts),
        (0, 2, 4),
        "{stats:?}"
    );
    let summary: Vec<(&str, &str, u32, bool)> = letters
        .iter()
        .map(|l| {
            (
                l.signal_id.as_str(),
                l.destination.as_str(),
                l.attempts,
                l.reason.contains(if l.attempts == 1 {
                    "HTTP 400"
                } else {
                    "HTTP 500"
                }),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("00000000000b", "default", 1, true),
            ("00000000000c", "default", 3, true)
        ]
    );
    assert!(delivered(&rx).is_empty());

    // Replaying while the receiver is still down puts both back (and stops: no endless loop).
    let (_tx, shutdown) = watch::channel(false);
    let destinations = s.config.resolve(|_| None).unwrap();
    let replayed = queue::dlq_replay(
        &s.client,
        &s.group,
        &s.config,
        &destinations,
        Duration::from_secs(1),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert_eq!(replayed, (0, 2));
    let again = queue::dlq_list(&s.client, &s.group, &s.config, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "{again:?}");

    // The receiver is back: replay delivers both, and the queue is empty afterwards.
    rx.lock().unwrap().otherwise = 200;
    let replayed = queue::dlq_replay(
        &s.client,
        &s.group,
        &s.config,
        &destinations,
        Duration::from_secs(1),
        shutdown,
    )
    .await
    .unwrap();
    assert_eq!(replayed, (2, 0));
    let want: BTreeSet<String> = signals.iter().map(|s| s.id.clone()).collect();
    assert_eq!(delivered(&rx), want);
    let left = queue::dlq_list(&s.client, &s.group, &s.config, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_pending_deliveries_delivers_them_after_restart() {
    let (url, rx) = receiver(503).await;
    let s = setup(&url, 1000).await;
    let signals = [
        signal(21, "acme", 0.6),
        signal(22, "globex", 0.7),
        signal(23, "acme", 0.8),
    ];
    s.enqueue(&signals).await;
    let (_stop, task) = s.worker();
    wait_for("a few failed attempts", || {
        rx.lock().unwrap().got.len() >= 3
    })
    .await;
    task.abort();
    let _ = task.await;
    assert!(delivered(&rx).is_empty());

    rx.lock().unwrap().otherwise = 200;
    let (stop, task) = s.worker();
    let want: BTreeSet<String> = signals.iter().map(|s| s.id.clone()).collect();
    wait_for("every pending signal", || delivered(&rx) == want).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_hands_its_high_risk_signals_to_the_webhook() {
    let (url, rx) = receiver(200).await;
    let mut env = Env::new();
    let id = unique("soar");
    let (topic, dlq) = (format!("signals-{id}"), format!("dlq-{id}"));
    env.extra_toml =
        format!("[soar]\nwebhook = \"{url}\"\ntopic = \"{topic}\"\ndlq_topic = \"{dlq}\"\n");
    create_topic(&env.brokers, &env.topic).await;
    let mut msgs: Vec<_> = (1..=6)
        .map(|i| raw("acme", &format!("2026-03-14T09:14:0{i}Z bastion-1 sshd[31{i}]: Failed password for root from 203.0.113.7 port 4010{i} ssh2")))
        .collect();
    msgs.push(raw("acme", "2026-03-14T09:20:00Z bastion-1 sshd[400]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"));
    produce(&env.brokers, &env.topic, &msgs).await;
    let (tx, shutdown) = watch::channel(false);
    let config = env.config();
    let task = tokio::spawn(async move { sentra_service::run::run(&config, shutdown).await });
    wait_for("the signal at the webhook", || delivered(&rx).len() == 1).await;
    tx.send(true).unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.stored["the SOAR queue"], 1, "{stats:?}");
    let body: Value = serde_json::from_slice(&rx.lock().unwrap().got[0].body).unwrap();
    assert_eq!(body["data"]["signal"], "ssh_brute_force");
    assert_eq!(body["severity"], "HIGH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_gets_a_calm_text_and_never_the_url_in_errors() {
    let (url, rx) = receiver(200).await;
    let slack = sentra_soar::Destination {
        name: "slack-oncall".into(),
        kind: sentra_soar::DestinationKind::Slack,
        url: url.clone(),
        api_key: String::new(),
        signing_secret: String::new(),
        tenants: vec![],
        min_risk: 0.8,
        rate_per_second: 5,
        from: String::new(),
        to: vec![],
        allow_http: false,
    };
    let config = SoarConfig::default();
    let s = signal(41, "acme", 0.85);
    let (_tx, mut shutdown) = watch::channel(false);
    let outcome = Deliverer::new(slack.clone(), &config)
        .deliver(&s, &mut shutdown, |_| {})
        .await
        .unwrap();
    assert!(matches!(outcome, sentra_soar::Outcome::Delivered { .. }));
    let body: Value = serde_json::from_slice(&rx.lock().unwrap().got[0].body).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("Sentra signal for acme: ssh_brute_force (CRITICAL, risk 0.85)"),
        "{text}"
    );
    assert!(text.contains("Suggested next step:") && text.contains(&s.id));
    for alarmist in ["!", "URGENT", "ALERT", "attack in progress", "compromised"] {
        assert!(!text.contains(alarmist), "{alarmist:?} in {text}");
    }

    // A Slack URL embeds its secret: a failure must not show it.
    let secret_url = "http://127.0.0.1:9/services/T000/B000/s3cr3tT0ken".to_owned();
    let config = SoarConfig {
        max_attempts: 2,
        initial_backoff_ms: 10,
        ..Default::default()
    };
    let outcome = Deliverer::new(
        sentra_soar::Destination {
            url: secret_url,
            ..slack
        },
        &config,
    )
    .deliver(&s, &mut shutdown, |_| {})
    .await
    .unwrap();
    let sentra_soar::Outcome::GaveUp { reason, .. } = outcome else {
        panic!("nothing listens on port 9")
    };
    assert!(!reason.contains("s3cr3tT0ken"), "{reason}");
}

/// A minimal SMTP server: answers the first `MAIL FROM` with a transient 451, accepts the rest, and keeps
/// every accepted message.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let (store, refused) = (got.clone(), Arc::new(Mutex::new(false)));
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (store, refused) = (store.clone(), refused.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write
                    .write_all(b"220 localhost ESMTP test\r\n")
                    .await
                    .unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "MAIL" if !std::mem::replace(&mut *refused.lock().unwrap(), true) => {
                            b"451 4.3.0 try again later\r\n"
                        }
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_through_smtp_after_a_transient_refusal() {
    let (port, got) = smtp_server().await;
    let email = sentra_soar::Destination {
        name: "soc-mail".into(),
        kind: sentra_soar::DestinationKind::Email,
        url: format!("smtp://127.0.0.1:{port}"),
        api_key: String::new(),
        signing_secret: String::new(),
        tenants: vec![],
        min_risk: 0.8,
        rate_per_second: 5,
        from: "Sentra <sentra@example.org>".into(),
        to: vec!["soc@example.org".into()],
        allow_http: false,
    };
    let config = SoarConfig {
        initial_backoff_ms: 20,
        ..Default::default()
    };
    let s = signal(51, "acme", 0.85);
    let (_tx, mut shutdown) = watch::channel(false);
    let mut attempts = Vec::new();
    let outcome = Deliverer::new(email, &config)
        .deliver(&s, &mut shutdown, |a| attempts.push(a.clone()))
        .await
        .unwrap();
    assert!(
        matches!(outcome, sentra_soar::Outcome::Delivered { attempts: 2, .. }),
        "{outcome:?} {attempts:?}"
    );
    let mails = got.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: Sentra: ssh_brute_force for acme (CRITICAL, risk 0.85)"),
        "{mail}"
    );
    assert!(
        mail.contains("To: soc@example.org") && mail.contains("sentra@example.org"),
        "{mail}"
    );
    assert!(
        mail.contains("Six failed logins for root from one source."),
        "{mail}"
    );
}
