//! Hostile producers against `sentra run` on real services (Kafka via Tansu, ClickHouse via chDB): a message
//! too large for the quarantine topic, and a shipper writing as a tenant whose topic it does not write to.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sentra_service::run::run;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::kafka_clickhouse::{count, create_topic, produce, raw, Env, Msg};
use crate::support::unique;

/// The first message on `topic`, read from its beginning.
async fn first_message(
    brokers: &str,
    topic: &str,
    within: Duration,
) -> Option<(Vec<u8>, Vec<(String, String)>)> {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.message.max.bytes", "4000000")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let m = tokio::time::timeout(within, c.recv()).await.ok()?.unwrap();
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                    (h.key.to_owned(), v.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    Some((m.payload().unwrap_or_default().to_vec(), headers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_for_the_quarantine_topic_is_cut_with_its_digest_not_a_stall() {
    let mut env = Env::new();
    // Input up to 1 MiB is accepted, more than librdkafka's default message.max.bytes (1,000,000).
    env.max_message_bytes = 1 << 20;
    create_topic(&env.brokers, &env.topic).await;
    create_topic(&env.brokers, &env.quarantine).await;
    let big = {
        let mut b = b"{\"tenant\":\"acme\",\"message\":\"".to_vec();
        b.resize(1_040_000, b'A');
        b
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<(), [u8]>::to(&env.topic)
                .payload(&big)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "tenant",
                    value: Some("acme"),
                })),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    produce(
        &env.brokers,
        &env.topic,
        &[raw("acme", "2026-03-14T09:20:00Z web-1 sshd[4]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x")],
    )
    .await;

    let config = env.config();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { run(&config, stopped).await });
    // The record reaches the quarantine topic, cut to fit, while the run goes on to the next message.
    let (payload, headers) = first_message(&env.brokers, &env.quarantine, Duration::from_secs(60))
        .await
        .expect("the oversized message reaches the quarantine topic");
    let header = |k: &str| {
        headers
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("sentra.reason"), Some("invalid_json"));
    assert_eq!(header("sentra.truncated"), Some("true"));
    assert_eq!(header("sentra.original_bytes"), Some("1040000"));
    let digest = const_hex::encode(Sha256::digest(&big));
    assert_eq!(header("sentra.original_sha256"), Some(digest.as_str()));
    assert!(payload.len() < 1_000_000 && big.starts_with(&payload));
    let ch = env.clickhouse();
    let started = Instant::now();
    while count(&ch, "events").await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the next message was never stored"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.send(true).unwrap();
    let stats = task.await.unwrap().expect("the run ends without error");
    assert_eq!((stats.events, stats.quarantined), (1, 1), "{stats:?}");
    // ClickHouse keeps the whole original.
    let stored: u64 = ch
        .query("SELECT length(original) FROM quarantine")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(stored, 1_040_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shipper_on_one_tenants_topic_cannot_write_as_another_tenant() {
    let mut env = Env::new();
    env.topic_tenant = Some("acme");
    create_topic(&env.brokers, &env.topic).await;
    // A brute force that would be globex's signal, spoofed by header and by document field on acme's topic.
    let mut msgs: Vec<Msg> = (0..6)
        .map(|i| raw("globex", &format!("2026-03-14T09:14:0{i}Z db-1 sshd[1{i}]: Failed password for root from 203.0.113.9 port 4{i}00 ssh2")))
        .collect();
    msgs.extend((0..6).map(|i| Msg {
        payload: format!(r#"{{"tenant":"globex","host":"db-1","message":"2026-03-14T09:14:1{i}Z db-1 sshd[2{i}]: Failed password for root from 203.0.113.9 port 5{i}00 ssh2"}}"#).into_bytes(),
        tenant: None,
    }));
    // acme's own lines: with and without the header, and a shipper's document naming acme.
    msgs.push(raw("acme", "2026-03-14T09:15:00Z web-1 sshd[4]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"));
    msgs.push(Msg {
        payload: b"2026-03-14T09:15:01Z web-1 sshd[5]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x".to_vec(),
        tenant: None,
    });
    msgs.push(Msg {
        payload: br#"{"tenant":"acme","host":"web-2","message":"2026-03-14T09:15:02Z web-2 sshd[6]: Accepted publickey for deploy from 10.0.0.5 port 22 ssh2: RSA SHA256:x"}"#.to_vec(),
        tenant: None,
    });
    produce(&env.brokers, &env.topic, &msgs).await;

    let ch = env.clickhouse();
    let started = Instant::now();
    let config = env.config();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { run(&config, stopped).await });
    while count(&ch, "events").await < 3 || count(&ch, "quarantine").await < 12 {
        assert!(!task.is_finished(), "the run stopped early");
        assert!(started.elapsed() < Duration::from_secs(60), "timed out");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    let stats = task.await.unwrap().expect("the run ends without error");
    assert_eq!(
        (stats.events, stats.quarantined, stats.signals),
        (3, 12, 0),
        "{stats:?}"
    );

    let tenants: Vec<String> = ch
        .query("SELECT DISTINCT tenant FROM events")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(tenants, ["acme"]);
    let quarantined: Vec<(String, String)> = ch
        .query("SELECT DISTINCT tenant, reason FROM quarantine")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(
        quarantined,
        [("acme".to_owned(), "tenant_mismatch".to_owned())]
    );
    assert_eq!(count(&ch, "signals").await, 0);
}
