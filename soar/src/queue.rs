//! Durable delivery through Kafka.
//!
//! `sentra run` calls [`enqueue`] with a batch's signals before it commits the batch's input offsets, and
//! awaits the broker's acknowledgement, so a signal is never lost between detection and delivery. Each
//! destination has its own consumer group on the signals topic ([`deliver`]): a signal's offset is
//! committed only after the destination answered 2xx or the signal was moved to the dead-letter topic, so a
//! crash or restart re-delivers at most the signal in flight (receivers deduplicate by
//! `X-Sentra-Signal-Id`). One destination being down never holds back another.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use sentra_schemas::Signal;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::audit::AuditLog;
use crate::config::{Destination, SoarConfig};
use crate::delivery::{Attempt, Deliverer, Interrupted, Outcome};
use sentra_kafka::Producer;
use sentra_schemas::audit::AuditEvent;

/// Why the queue could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Kafka failed.
    #[error("Kafka: {0} (check kafka.brokers and that the soar topics exist)")]
    Kafka(#[from] KafkaError),
    /// Shutdown while a delivery was pending (it stays queued).
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// The consumer group delivering to `destination`.
pub fn group_for(group_prefix: &str, destination: &str) -> String {
    format!("{group_prefix}-soar-{destination}")
}

/// Puts the signals any destination wants on the signals topic (keyed by tenant, so each tenant's signals
/// stay in order) and waits for the broker to acknowledge each. Returns how many were queued.
pub async fn enqueue(
    producer: &Producer,
    topic: &str,
    signals: &[Signal],
    destinations: &[Destination],
) -> Result<usize, KafkaError> {
    let mut queued = 0;
    for s in signals
        .iter()
        .filter(|s| destinations.iter().any(|d| d.wants(s)))
    {
        let payload = serde_json::to_vec(s).expect("signals serialize");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "tenant",
                value: Some(s.tenant.as_str()),
            })
            .insert(Header {
                key: "sentra.signal_id",
                value: Some(s.id.as_str()),
            });
        let record = FutureRecord::to(topic)
            .key(s.tenant.as_str())
            .payload(&payload)
            .headers(headers);
        producer.send(record, Duration::from_secs(30)).await?;
        queued += 1;
    }
    Ok(queued)
}

/// What a delivery worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerStats {
    /// Signals delivered.
    pub delivered: u64,
    /// Signals moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Signals this destination does not take (tenant, risk, suppressed).
    pub skipped: u64,
    /// HTTP attempts made.
    pub attempts: u64,
}

fn header(m: &impl Message, key: &str) -> String {
    m.headers()
        .and_then(|h| h.iter().find(|h| h.key == key))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// One entry of the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Where it sits in the dead-letter topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// Destination it could not reach.
    pub destination: String,
    /// Why delivery stopped.
    pub reason: String,
    /// Attempts made.
    pub attempts: u32,
    /// The signal's id.
    pub signal_id: String,
    /// Its tenant.
    pub tenant: String,
}

/// Why and where a signal was not delivered (the dead-letter headers).
struct Failure<'a> {
    destination: &'a str,
    reason: &'a str,
    attempts: u32,
    signal_id: &'a str,
    tenant: &'a str,
}

/// Records `payload` (a signal) on the dead-letter topic with why and where it was going.
async fn dead_letter(
    producer: &Producer,
    topic: &str,
    payload: &[u8],
    f: Failure<'_>,
) -> Result<(i32, i64), KafkaError> {
    let Failure {
        destination,
        reason,
        attempts,
        signal_id,
        tenant,
    } = f;
    let attempts = attempts.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "sentra.destination",
            value: Some(destination),
        })
        .insert(Header {
            key: "sentra.reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "sentra.attempts",
            value: Some(attempts.as_str()),
        })
        .insert(Header {
            key: "sentra.signal_id",
            value: Some(signal_id),
        })
        .insert(Header {
            key: "tenant",
            value: Some(tenant),
        });
    let record = FutureRecord::<[u8], [u8]>::to(topic)
        .payload(payload)
        .headers(headers);
    producer.send(record, Duration::from_secs(30)).await
}

/// Delivers `deliverer`'s destination's signals from the signals topic until `shutdown`, committing each
/// offset only after delivery or dead-lettering, and after every HTTP attempt is on the audit trail.
pub async fn deliver(
    client: &ClientConfig,
    group_prefix: &str,
    config: &SoarConfig,
    deliverer: &Deliverer,
    mut shutdown: watch::Receiver<bool>,
    audit: Option<&AuditLog>,
) -> Result<WorkerStats, QueueError> {
    let destination = deliverer.destination();
    let group = group_for(group_prefix, &destination.name);
    let consumer = sentra_kafka::consumer::group(client, &group, &[&config.topic])?;
    let producer = Producer::acknowledged(client)?;
    let mut stats = WorkerStats::default();
    info!(destination = %destination.name, group = %group, "delivering signals");
    loop {
        let m = tokio::select! {
            m = consumer.recv() => m?,
            _ = shutdown.changed() => break,
        };
        let payload = m.payload().unwrap_or_default();
        match serde_json::from_slice::<Signal>(payload) {
            Err(e) => {
                let reason = format!("not a Sentra signal: {e}");
                dead_letter(
                    &producer,
                    &config.dlq_topic,
                    payload,
                    Failure {
                        destination: &destination.name,
                        reason: &reason,
                        attempts: 0,
                        signal_id: "",
                        tenant: &header(&m, "tenant"),
                    },
                )
                .await?;
                stats.dead_lettered += 1;
            }
            Ok(signal) if !destination.wants(&signal) => stats.skipped += 1,
            Ok(signal) => {
                let mut attempts: Vec<Attempt> = Vec::new();
                let outcome = deliverer
                    .deliver(&signal, &mut shutdown, |a| attempts.push(a.clone()))
                    .await?;
                stats.attempts += attempts.len() as u64;
                if let Some(audit) = audit {
                    let events: Vec<AuditEvent> = attempts
                        .iter()
                        .map(|a| {
                            AuditEvent::new(
                                signal.tenant.as_str(),
                                a.at_us,
                                &format!("destination:{}", destination.name),
                                "delivery.attempt",
                                &signal.id,
                                serde_json::json!({"attempt": a.number, "status": a.status, "detail": a.detail}),
                            )
                        })
                        .collect();
                    audit.record(&events).await?;
                }
                match outcome {
                    Outcome::Delivered { .. } => stats.delivered += 1,
                    Outcome::GaveUp { attempts, reason } => {
                        warn!(destination = %destination.name, signal = %signal.id, %reason, "moved to the dead-letter queue");
                        dead_letter(
                            &producer,
                            &config.dlq_topic,
                            payload,
                            Failure {
                                destination: &destination.name,
                                reason: &reason,
                                attempts,
                                signal_id: &signal.id,
                                tenant: signal.tenant.as_str(),
                            },
                        )
                        .await?;
                        stats.dead_lettered += 1;
                    }
                }
            }
        }
        sentra_kafka::consumer::commit_after(&consumer, [&m]);
    }
    Ok(stats)
}

/// The group that tracks which dead letters were replayed.
fn dlq_group(group_prefix: &str) -> String {
    format!("{group_prefix}-soar-dlq")
}

/// Reads the dead letters not yet replayed until the topic has been quiet for `idle` or `handle` says
/// stop (returns false); `handle` sees each with its payload.
async fn read_pending(
    consumer: &StreamConsumer,
    idle: Duration,
    mut handle: impl AsyncFnMut(&rdkafka::message::BorrowedMessage<'_>) -> Result<bool, QueueError>,
) -> Result<(), QueueError> {
    loop {
        match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => return Ok(()),
            Ok(m) => {
                if !handle(&m?).await? {
                    return Ok(());
                }
            }
        }
    }
}

fn as_dead_letter(m: &impl Message) -> DeadLetter {
    DeadLetter {
        partition: m.partition(),
        offset: m.offset(),
        destination: header(m, "sentra.destination"),
        reason: header(m, "sentra.reason"),
        attempts: header(m, "sentra.attempts").parse().unwrap_or(0),
        signal_id: header(m, "sentra.signal_id"),
        tenant: header(m, "tenant"),
    }
}

/// The dead letters not yet replayed.
pub async fn dlq_list(
    client: &ClientConfig,
    group_prefix: &str,
    config: &SoarConfig,
    idle: Duration,
) -> Result<Vec<DeadLetter>, QueueError> {
    let consumer =
        sentra_kafka::consumer::at_committed(client, &dlq_group(group_prefix), &config.dlq_topic)?;
    let mut out = Vec::new();
    read_pending(&consumer, idle, async |m| {
        out.push(as_dead_letter(m));
        Ok(true)
    })
    .await?;
    Ok(out)
}

/// Re-sends every pending dead letter to its destination (with the full retry budget). Delivered ones are
/// done; ones that fail again go back on the dead-letter topic with the new reason. Returns
/// (delivered, failed again).
pub async fn dlq_replay(
    client: &ClientConfig,
    group_prefix: &str,
    config: &SoarConfig,
    destinations: &[Destination],
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(u64, u64), QueueError> {
    let consumer =
        sentra_kafka::consumer::at_committed(client, &dlq_group(group_prefix), &config.dlq_topic)?;
    let producer = Producer::acknowledged(client)?;
    let (mut delivered, mut failed) = (0u64, 0u64);
    // Letters that fail again are appended to the same topic: stop on reaching the first of them.
    let mut requeued_at: Option<(i32, i64)> = None;
    read_pending(&consumer, idle, async |m| {
        if requeued_at.is_some_and(|(p, o)| m.partition() == p && m.offset() >= o) {
            return Ok(false);
        }
        let letter = as_dead_letter(m);
        let payload = m.payload().unwrap_or_default();
        let target = destinations.iter().find(|d| d.name == letter.destination);
        let outcome = match (target, serde_json::from_slice::<Signal>(payload)) {
            (Some(d), Ok(signal)) => {
                Deliverer::new(d.clone(), config)
                    .deliver(&signal, &mut shutdown, |_| {})
                    .await?
            }
            (None, _) => Outcome::GaveUp {
                attempts: 0,
                reason: format!(
                    "destination {:?} is no longer configured",
                    letter.destination
                ),
            },
            (_, Err(e)) => Outcome::GaveUp {
                attempts: 0,
                reason: format!("not a Sentra signal: {e}"),
            },
        };
        match outcome {
            Outcome::Delivered { .. } => delivered += 1,
            Outcome::GaveUp { attempts, reason } => {
                let at = dead_letter(
                    &producer,
                    &config.dlq_topic,
                    payload,
                    Failure {
                        destination: &letter.destination,
                        reason: &reason,
                        attempts,
                        signal_id: &letter.signal_id,
                        tenant: &letter.tenant,
                    },
                )
                .await?;
                requeued_at.get_or_insert(at);
                failed += 1;
            }
        }
        consumer.commit_message(m, CommitMode::Sync)?;
        Ok(true)
    })
    .await?;
    Ok((delivered, failed))
}
