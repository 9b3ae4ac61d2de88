//! `sentra run`: source → engine → outputs → acknowledgements → checkpoint and commit.
//!
//! [`run`] builds the parts from the configuration and [`Driver`] runs the loop. One batch at a time: the
//! [`Source`] hands over a batch normalized as its messages arrived; the detection
//! engine turns it into signals and late rows; every [`Output`] stores it, step by step (events, then the
//! quarantine with the rows outputs refused, then signals), each write retried with backoff while the
//! output says a retry can help. Only then is the batch acknowledged to the source. Every
//! `checkpoint_interval_ms` the engine state is checkpointed with the acknowledged positions, and only then
//! are they committed. A crash before a checkpoint re-reads those batches on restart (stable event and
//! signal ids make the re-inserted rows collapse in ClickHouse's ReplacingMergeTree); a crash between
//! checkpoint and commit skips the already-counted messages, so window state is never counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use sentra_kafka::{KafkaError, Producer};
use sentra_pipeline::detect::{catalog, Engine, EngineError, Overrides, ShedTotals};
use sentra_pipeline::normalize::{NormalizeConfig, Normalizer, YearPolicy};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::ElasticsearchSink;
use sentra_soar::audit::AuditLog;
use serde::Serialize;
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::health::{Dependency, Health};
use crate::outputs::{self, Output, OutputError};
use crate::sources::kafka::KafkaSource;
use crate::sources::{Source, SourceError};
use checkpoint::{Checkpoint, Checkpoints};

pub mod checkpoint;
mod driver;
pub mod forensics;
mod workers;

pub use driver::Driver;

#[cfg(test)]
mod tests;

/// What a run did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// Kafka messages consumed.
    pub consumed: u64,
    /// Events stored.
    pub events: u64,
    /// Messages quarantined.
    pub quarantined: u64,
    /// Signals stored.
    pub signals: u64,
    /// Events older than their tenant's watermark (stored, quarantined as `late`, not counted).
    pub late: u64,
    /// Offset commits that succeeded.
    pub commits: u64,
    /// What each output stored (events, quarantine records, signals, queued work), by output name: e.g.
    /// `the forensics queue` counts the event ids queued for Elasticsearch (evidence from earlier batches
    /// included), `the SOAR queue` the signals enqueued for delivery.
    pub stored: BTreeMap<String, u64>,
    /// Batches handled (each one detection step and one write to every store).
    pub batches: u64,
    /// Messages that were not valid UTF-8, decoded lossily (their bytes kept in `event.original`).
    pub lossy_utf8: u64,
    /// Entities dropped per tenant and detection because the detection held
    /// `detection.max_entities_per_detection` of them (each reported by a `detection_degraded` signal).
    pub state_shed: ShedTotals,
}

impl RunStats {
    /// Counts what `output` stored.
    fn stored(&mut self, output: &str, stored: u64) {
        *self.stored.entry(output.to_owned()).or_default() += stored;
    }
}

/// Why `sentra run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Kafka could not be set up.
    #[error("Kafka: {0} (check kafka.brokers and that the broker is reachable)")]
    Kafka(#[from] KafkaError),
    /// The source could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output refused a write in a way retrying cannot fix; offsets were not committed.
    #[error("{0}; the batch's offsets were not committed, so nothing is lost: fix the cause and restart")]
    Output(#[from] OutputError),
    /// Shutdown was requested while a write was still being retried; offsets were not committed.
    #[error("stopped while {0} was unavailable; the batch's offsets were not committed and will be re-read")]
    Interrupted(&'static str),
    /// The configuration cannot be used (e.g. a destination's secret is not in the environment).
    #[error("configuration: {0}")]
    Config(String),
    /// The detections could not be loaded or planned.
    #[error("detections: {0}")]
    Detections(String),
    /// The detection engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The checkpoint could not be read or written.
    #[error("checkpoint {path}: {detail} (fix or remove the file; removing it restarts window state empty)")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

/// Runs until `shutdown` turns true (or an unrecoverable error). Offsets are committed at checkpoints, after
/// every output acknowledged every batch they cover.
pub async fn run(
    config: &Config,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, RunError> {
    let client = config.kafka_client();
    let clickhouse = ClickHouseSink::new(config.clickhouse.clone());
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| RunError::Config(p.join("; ")))?;
    let producer = Producer::acknowledged(&client)?;
    let audit = AuditLog::new(&client, &config.audit.topic)?;
    let elasticsearch = config
        .elasticsearch
        .enabled()
        .then(|| ElasticsearchSink::new(config.elasticsearch.clone()))
        .transpose()
        .map_err(OutputError::from)?;

    let mut outputs: Vec<Box<dyn Output>> = vec![Box::new(outputs::clickhouse::ClickHouse(
        clickhouse.clone(),
    ))];
    if elasticsearch.is_some() {
        outputs.push(Box::new(outputs::elasticsearch::ForensicsQueue {
            producer: producer.clone(),
            topic: forensics::topic(config),
            config: config.elasticsearch.clone(),
            client: client.clone(),
        }));
    }
    outputs.push(Box::new(outputs::quarantine::QuarantineTopic {
        producer: producer.clone(),
        topic: config.kafka.quarantine_topic.clone(),
        client: client.clone(),
    }));
    outputs.push(Box::new(outputs::audit::Audit {
        log: audit.clone(),
        topic: config.audit.topic.clone(),
        anchor_topic: config.audit.anchor_topic.clone(),
        client: client.clone(),
    }));
    if config.soar.enabled() {
        outputs.push(Box::new(outputs::soar::SoarQueue {
            producer: producer.clone(),
            topic: config.soar.topic.clone(),
            dlq_topic: config.soar.dlq_topic.clone(),
            destinations: destinations.clone(),
            client: client.clone(),
        }));
    }
    // Liveness and readiness answer from the start, also while the outputs wait for their stores below.
    let mut dependencies: Vec<Box<dyn Dependency>> = vec![
        Box::new(sentra_kafka::reachable::Brokers::new(&client)?),
        Box::new(clickhouse.clone()),
    ];
    if let Some(es) = &elasticsearch {
        dependencies.push(Box::new(es.clone()));
    }
    let health = Arc::new(Health::new(dependencies));
    workers::serve_api(
        config,
        &clickhouse,
        elasticsearch.clone(),
        &health,
        &shutdown,
    )
    .await?;
    for o in &outputs {
        driver::with_retry(o.as_ref(), &mut shutdown, |_| o.prepare()).await?;
    }
    let members = config.kafka_consumer_client();
    let delivery = workers::start(
        config,
        &members,
        &clickhouse,
        &audit,
        &destinations,
        &health,
        &shutdown,
    );
    if let Some(es) = elasticsearch {
        workers::index_forensics(config, &members, &clickhouse, es, &health, &shutdown);
    }

    let normalize = NormalizeConfig {
        max_message_bytes: config.input.max_message_bytes,
        allowed_tenants: config
            .tenants
            .allow
            .as_ref()
            .map(|a| a.iter().cloned().collect()),
        max_tenants: Some(config.tenants.max),
        year: YearPolicy::Infer,
        zones: config
            .zones()
            .expect("zones are checked with the configuration"),
        tenant_from_host: false,
        max_ahead_secs: config.detection.max_clock_skew_secs,
    };
    let mut source = KafkaSource::new(&members, &config.kafka, Normalizer::new(normalize))?;
    let detections = catalog::load(
        config.detection.folder.as_deref(),
        &config.detection.disabled,
    )
    .map_err(RunError::Detections)?;
    let mut engine = Engine::new(detections, config.engine()).await?;
    let overrides = match &config.detection.overrides_path {
        Some(p) => Overrides::load(p).map_err(RunError::Detections)?,
        None => Overrides::default(),
    };
    let path = config.detection.checkpoint_path.as_path();
    if let Some(c) = Checkpoint::load(path, &config.kafka.group_id)? {
        info!(path = %path.display(), partitions = c.offsets.len(), "resuming from checkpoint");
        engine.restore(c.engine);
        source.resume(c.offsets);
    }
    let driver = Driver {
        source: Box::new(source),
        engine,
        overrides,
        outputs,
        checkpoints: Checkpoints::new(
            &config.kafka.group_id,
            path,
            std::time::Duration::from_millis(config.detection.checkpoint_interval_ms),
        ),
        allowed_lateness_secs: config.detection.allowed_lateness_secs,
        health: Arc::clone(&health),
    };
    let stats = driver.drive(&mut shutdown).await?;
    for w in delivery {
        let _ = w.await;
    }
    info!(?stats, "stopped");
    Ok(stats)
}
