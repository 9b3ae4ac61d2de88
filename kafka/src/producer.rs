//! A Kafka producer whose every send is awaited until the broker acknowledges it.
//!
//! rust-rdkafka's `FutureProducer` does this too, but its polling thread calls `BaseProducer::poll(100 ms)`,
//! which rounds the time left down to whole milliseconds: the last millisecond of every cycle becomes a zero
//! timeout, and the thread spins there, about 1 % of a core per producer even when idle. This producer's
//! thread waits up to a second per poll instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::message::ToBytes;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, FutureRecord, ProducerContext};
use tokio::sync::oneshot;

/// Hands each delivery report to the send waiting for it.
struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<oneshot::Sender<KafkaResult<(i32, i64)>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiting: Self::DeliveryOpaque) {
        let _ = waiting.send(match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        });
    }
}

/// A Kafka producer whose sends complete when the broker has the message (see the module docs). Clones
/// share one client.
#[derive(Clone)]
pub struct Producer(Arc<Shared>);

struct Shared {
    inner: Arc<BaseProducer<Reports>>,
    stop: Arc<AtomicBool>,
}

impl Producer {
    /// The producer Sentra writes with: `client`'s settings (less the consumer-group ones, which librdkafka
    /// would warn about), each message tried for at most 30 s.
    pub fn acknowledged(client: &ClientConfig) -> KafkaResult<Self> {
        let mut c = client.clone();
        c.remove("session.timeout.ms")
            .set("message.timeout.ms", "30000");
        Self::new(&c)
    }

    /// A producer configured by `config`, with its delivery-report thread started.
    pub fn new(config: &ClientConfig) -> KafkaResult<Self> {
        let inner: Arc<BaseProducer<Reports>> = Arc::new(config.create_with_context(Reports)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (producer, stopped) = (Arc::clone(&inner), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("kafka delivery reports".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    producer.poll(Duration::from_secs(1));
                }
            })
            .map_err(|e| {
                KafkaError::ClientCreation(format!("cannot start the delivery thread: {e}"))
            })?;
        Ok(Self(Arc::new(Shared { inner, stop })))
    }

    /// Sends `record` and waits until the broker acknowledges it; returns the partition and offset it got.
    /// While librdkafka's local queue is full the send is retried, for at most `queue_timeout`.
    pub async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: Duration,
    ) -> KafkaResult<(i32, i64)>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let (tx, rx) = oneshot::channel();
        let mut base = BaseRecord::with_opaque_to(record.topic, Box::new(tx));
        base.partition = record.partition;
        base.payload = record.payload;
        base.key = record.key;
        base.timestamp = record.timestamp;
        base.headers = record.headers;
        let started = Instant::now();
        loop {
            match self.0.inner.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if started.elapsed() < queue_timeout =>
                {
                    base = back;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
        rx.await.unwrap_or(Err(KafkaError::Canceled))
    }
}

impl Drop for Shared {
    /// Stops the delivery thread (once the last clone is gone), which lets go of the client within a
    /// second. Every send was awaited, so nothing is left in flight.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
