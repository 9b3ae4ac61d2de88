//! `sentra run`: consume Kafka with a consumer group, normalize, detect, store, checkpoint, and only then
//! commit.
//!
//! One batch at a time: messages are normalized into an Arrow batch as they arrive and run through the
//! detection engine; quarantined (and late) messages are produced to the quarantine topic (delivery awaited),
//! events and closed-window signals are inserted into ClickHouse (acknowledgement awaited, retried with backoff
//! while ClickHouse is unavailable). Every `checkpoint_interval_ms` the engine state is checkpointed with the
//! next offsets, and only then are the offsets of the batches stored since committed. A crash before a
//! checkpoint re-reads those batches on restart (stable event and signal ids make the re-inserted rows collapse
//! in ClickHouse's ReplacingMergeTree); a crash between checkpoint and commit skips the already-counted
//! messages, so window state is never counted twice.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use sentra_schemas::{EventColumns, Quarantined};
use sentra_schemas::{EventRef, EventRows, QuarantineReason, Signal};
use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::{document, Document, ElasticsearchSink};
use sentra_sinks::SinkError;
use sentra_soar::producer::Producer;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::detect::{catalog, Engine, EngineError, EngineState, Overrides};
use crate::normalize::{Input, NormalizeConfig, Normalizer, YearPolicy};
use crate::replay::late_record;

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
    /// Documents indexed in the forensics store (Elasticsearch), evidence fetched back included.
    pub indexed: u64,
    /// Signals put on the SOAR delivery queue.
    pub queued_for_soar: u64,
    /// Batches handled (each one detection step and one write to every store).
    pub batches: u64,
    /// Messages that were not valid UTF-8, decoded lossily (their bytes kept in `event.original`).
    pub lossy_utf8: u64,
}

/// Why `sentra run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Kafka could not be set up or used.
    #[error("Kafka: {0} (check kafka.brokers and that the broker is reachable)")]
    Kafka(#[from] KafkaError),
    /// A sink rejected data in a way retrying cannot fix; offsets were not committed.
    #[error("{0}; the batch's offsets were not committed, so nothing is lost: fix the cause and restart")]
    Sink(#[from] SinkError),
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

/// What `sentra run` saves every checkpoint interval, before committing offsets: the engine's window state and
/// the next offset of every partition it reflects. On restart, messages below these offsets are skipped
/// (their effects are already in the state), so a restarted run yields the same signals.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Consumer group the state belongs to.
    pub group_id: String,
    /// Next offset per `topic/partition`.
    pub offsets: BTreeMap<String, i64>,
    /// Detection engine state.
    pub engine: EngineState,
}

impl Checkpoint {
    fn load(path: &std::path::Path, group: &str) -> Result<Option<Self>, RunError> {
        let err = |detail: String| RunError::Checkpoint {
            path: path.display().to_string(),
            detail,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let c: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| err(format!("not a Sentra checkpoint: {e}")))?;
        if c.group_id != group {
            return Err(err(format!(
                "belongs to consumer group {:?}, not {group:?}",
                c.group_id
            )));
        }
        Ok(Some(c))
    }

    fn save(&self, path: &std::path::Path) -> Result<(), RunError> {
        let err = |detail: String| RunError::Checkpoint {
            path: path.display().to_string(),
            detail,
        };
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec(self).map_err(|e| err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| err(e.to_string()))
    }
}

/// The SOAR dead letters not yet replayed (`sentra soar dlq list`).
pub async fn soar_dlq_list(
    config: &Config,
) -> Result<Vec<sentra_soar::queue::DeadLetter>, RunError> {
    sentra_soar::queue::dlq_list(
        &client_config(config),
        &config.kafka.group_id,
        &config.soar,
        Duration::from_secs(3),
    )
    .await
    .map_err(|e| RunError::Config(e.to_string()))
}

/// Re-sends the pending SOAR dead letters (`sentra soar dlq replay`): (delivered, failed again).
pub async fn soar_dlq_replay(
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(u64, u64), RunError> {
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| RunError::Config(p.join("; ")))?;
    sentra_soar::queue::dlq_replay(
        &client_config(config),
        &config.kafka.group_id,
        &config.soar,
        &destinations,
        Duration::from_secs(3),
        shutdown,
    )
    .await
    .map_err(|e| RunError::Config(e.to_string()))
}

/// Builds the librdkafka client settings shared by consumer, producer and admin client.
pub(crate) fn client_config(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers);
    for (k, v) in &config.kafka.properties {
        c.set(k, v);
    }
    c
}

/// Retries `op` with exponential backoff (200 ms doubling to 30 s) while the error is retryable and no
/// shutdown was requested.
async fn with_retry<T, F, Fut>(
    store: &'static str,
    shutdown: &mut watch::Receiver<bool>,
    mut op: F,
) -> Result<T, RunError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
{
    let mut delay = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                warn!(store, error = %e, retry_in_ms = delay.as_millis() as u64, "write failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return Err(RunError::Interrupted(store)),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates `topic` with one partition unless it exists.
pub(crate) async fn ensure_topic(config: &Config, topic: &str) -> Result<(), RunError> {
    let admin: AdminClient<DefaultClientContext> = client_config(config).create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics([&new], &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaError::AdminOp(code).into())
                    .inspect_err(|_| warn!(topic = t, "cannot create topic"))
            }
        }
    }
    Ok(())
}

/// Runs until `shutdown` turns true (or an unrecoverable error). Offsets are committed at checkpoints, after
/// the sinks acknowledged every batch they cover.
pub async fn run(
    config: &Config,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, RunError> {
    let sink = ClickHouseSink::new(config.clickhouse.clone());
    let applied = with_retry("ClickHouse", &mut shutdown, || sink.migrate()).await?;
    if !applied.is_empty() {
        info!(migrations = ?applied, "ClickHouse schema migrated");
    }
    if !config.api.listen.is_empty() {
        let es = config
            .elasticsearch
            .enabled()
            .then(|| ElasticsearchSink::new(config.elasticsearch.clone()))
            .transpose()?;
        let store = sentra_queries::Store::services(sink.client().clone(), es);
        let api = crate::api::Api::new(&config.api, store, Some(config.clone()));
        let addr = crate::api::serve(&config.api.listen, api, shutdown.clone())
            .await
            .map_err(|e| RunError::Config(format!("api.listen {}: {e}", config.api.listen)))?;
        info!(%addr, "HTTP API listening");
    }
    let forensics = match config.elasticsearch.enabled() {
        true => {
            let es = ElasticsearchSink::new(config.elasticsearch.clone())?;
            with_retry("Elasticsearch", &mut shutdown, || es.ensure_template()).await?;
            Some(es)
        }
        false => None,
    };
    ensure_topic(config, &config.kafka.quarantine_topic).await?;
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| RunError::Config(p.join("; ")))?;
    let mut workers = Vec::new();
    ensure_topic(config, &config.audit.topic).await?;
    let audit = sentra_soar::audit::AuditLog::new(&client_config(config), &config.audit.topic)?;
    {
        let (client, topic, rx) = (
            client_config(config),
            config.audit.topic.clone(),
            shutdown.clone(),
        );
        let group = format!("{}-audit", config.kafka.group_id);
        let store = sink.clone();
        tokio::spawn(async move {
            match sentra_soar::audit::chain(&client, &group, &topic, &store, rx).await {
                Ok(n) => info!(chained = n, "audit chainer stopped"),
                Err(e) => warn!(error = %e, "audit chainer stopped"),
            }
        });
    }
    if config.soar.enabled() {
        ensure_topic(config, &config.soar.topic).await?;
        ensure_topic(config, &config.soar.dlq_topic).await?;
        for d in &destinations {
            let (client, soar, rx) = (client_config(config), config.soar.clone(), shutdown.clone());
            let audit = audit.clone();
            let prefix = config.kafka.group_id.clone();
            let deliverer = sentra_soar::Deliverer::new(d.clone(), &config.soar);
            workers.push(tokio::spawn(async move {
                let name = deliverer.destination().name.clone();
                let r = sentra_soar::queue::deliver(
                    &client,
                    &prefix,
                    &soar,
                    &deliverer,
                    rx,
                    Some(&audit),
                )
                .await;
                match &r {
                    Ok(stats) => info!(destination = %name, ?stats, "delivery stopped"),
                    Err(e) => warn!(destination = %name, error = %e, "delivery stopped"),
                }
                r
            }));
        }
    }

    let consumer: StreamConsumer = client_config(config)
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            config.kafka.session_timeout_ms.to_string(),
        )
        .set("enable.partition.eof", "false")
        .create()?;
    let topics: Vec<&str> = config.kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let producer = Producer::new(client_config(config).set("message.timeout.ms", "30000"))?;
    info!(brokers = %config.kafka.brokers, group = %config.kafka.group_id, topics = ?topics, "consuming");

    let normalize = NormalizeConfig {
        max_message_bytes: config.input.max_message_bytes,
        allowed_tenants: config
            .tenants
            .allow
            .as_ref()
            .map(|a| a.iter().cloned().collect()),
        year: YearPolicy::Infer,
        zones: config
            .zones()
            .expect("zones are checked with the configuration"),
        tenant_from_host: false,
        max_ahead_secs: config.detection.max_clock_skew_secs,
    };
    let mut normalizer = Normalizer::new(normalize);
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
    let checkpoint_path = config.detection.checkpoint_path.as_path();
    let checkpoint = match Checkpoint::load(checkpoint_path, &config.kafka.group_id)? {
        Some(c) => {
            info!(path = %checkpoint_path.display(), partitions = c.offsets.len(), "resuming from checkpoint");
            engine.restore(c.engine.clone());
            c
        }
        None => Checkpoint {
            group_id: config.kafka.group_id.clone(),
            ..Checkpoint::default()
        },
    };
    let mut checkpoints = Checkpoints {
        checkpoint,
        path: checkpoint_path,
        interval: Duration::from_millis(config.detection.checkpoint_interval_ms),
        uncommitted: BTreeMap::new(),
        saved_at: tokio::time::Instant::now(),
    };
    let mut stats = RunStats::default();
    let wait = Duration::from_millis(config.kafka.batch_max_wait_ms);

    loop {
        // Collect a batch: block for the first message, then fill until full or the wait runs out. A quiet
        // stream still gets its stored batches checkpointed and committed when the interval is up.
        let mut batch = BatchBuilder::new(config.kafka.batch_max_messages);
        tokio::select! {
            m = consumer.recv() => batch.add(&m?, &checkpoints.checkpoint, config, &mut normalizer),
            _ = tokio::time::sleep_until(checkpoints.due_at()), if checkpoints.pending() => {
                checkpoints.save_and_commit(&engine, &consumer, &mut stats)?;
                continue;
            }
            _ = shutdown.changed() => break,
        }
        let deadline = tokio::time::Instant::now() + wait;
        while batch.messages < config.kafka.batch_max_messages
            && batch.bytes < config.kafka.batch_max_bytes
        {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(m) => batch.add(&m?, &checkpoints.checkpoint, config, &mut normalizer),
                Err(_) => break,
            }
        }
        let BatchBuilder {
            columns,
            mut quarantined,
            partitions,
            messages,
            skipped,
            ..
        } = batch;
        let events = columns.into_batch();
        let outcome = engine.process(&events).await?;
        stats.late += outcome.late_rows.len() as u64;
        for &row in &outcome.late_rows {
            quarantined.push(late_record(
                &events,
                row,
                config.detection.allowed_lateness_secs,
            ));
        }
        let mut signals = outcome.signals;
        signals.iter_mut().for_each(|s| overrides.apply(s));

        let refused =
            with_retry("ClickHouse", &mut shutdown, || sink.write_events(&events)).await?;
        let rows = EventRows::new(&events);
        for r in &refused {
            quarantined.push(refused_record(&rows.get(r.row), "ClickHouse", &r.detail));
        }
        if let Some(es) = &forensics {
            let (indexed, refused) =
                index_forensics(es, &sink, &events, &signals, &mut shutdown).await?;
            stats.indexed += indexed;
            quarantined.extend(refused);
        }
        send_to_quarantine(
            &producer,
            &config.kafka.quarantine_topic,
            &quarantined,
            &mut shutdown,
        )
        .await?;
        with_retry("ClickHouse", &mut shutdown, || {
            sink.write_quarantine(&quarantined)
        })
        .await?;
        with_retry("ClickHouse", &mut shutdown, || sink.write_signals(&signals)).await?;
        audit.record(&signal_audit(&signals)).await?;
        if config.soar.enabled() {
            let queued =
                sentra_soar::queue::enqueue(&producer, &config.soar.topic, &signals, &destinations)
                    .await?;
            stats.queued_for_soar += queued as u64;
        }

        checkpoints.stored(partitions);
        if tokio::time::Instant::now() >= checkpoints.due_at() {
            checkpoints.save_and_commit(&engine, &consumer, &mut stats)?;
        }
        stats.consumed += (messages - skipped) as u64;
        stats.events += events.num_rows() as u64;
        stats.quarantined += quarantined.len() as u64 - outcome.late_rows.len() as u64;
        stats.signals += signals.len() as u64;
        stats.batches += 1;
        stats.lossy_utf8 = normalizer.lossy_utf8();
        info!(
            messages,
            skipped,
            events = events.num_rows(),
            quarantined = quarantined.len(),
            signals = signals.len(),
            "batch stored"
        );
    }
    if checkpoints.pending() {
        checkpoints.save_and_commit(&engine, &consumer, &mut stats)?;
    }
    for w in workers {
        let _ = w.await;
    }
    info!(?stats, "stopped");
    Ok(stats)
}

/// A partition's part in a batch.
struct Partition {
    topic: String,
    partition: i32,
    /// The offset after the batch's last message from it.
    next: i64,
    /// The checkpointed offset: messages below it were handled before a restart.
    done: Option<i64>,
}

/// A batch being built from messages as they arrive: each is normalized at once, so none is copied.
struct BatchBuilder {
    columns: EventColumns,
    quarantined: Vec<Quarantined>,
    partitions: Vec<Partition>,
    /// Messages received, skipped ones included.
    messages: usize,
    /// Payload bytes of the messages normalized into the batch.
    bytes: usize,
    /// Messages handled before a restart (stored and in the checkpointed state), not yet committed.
    skipped: usize,
    /// The `kafka:topic:partition:offset` of the message being normalized.
    source: String,
}

impl BatchBuilder {
    fn new(max_messages: usize) -> Self {
        Self {
            columns: EventColumns::with_capacity(max_messages.min(1 << 16)),
            quarantined: Vec::new(),
            partitions: Vec::new(),
            messages: 0,
            bytes: 0,
            skipped: 0,
            source: String::new(),
        }
    }

    /// Normalizes `m` into the batch (or its quarantine), unless the checkpoint already holds it.
    fn add(
        &mut self,
        m: &BorrowedMessage<'_>,
        checkpoint: &Checkpoint,
        config: &Config,
        normalizer: &mut Normalizer,
    ) {
        use std::fmt::Write as _;
        self.messages += 1;
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        let at = match self
            .partitions
            .iter()
            .position(|p| p.partition == partition && p.topic == topic)
        {
            Some(at) => at,
            None => {
                let done = checkpoint
                    .offsets
                    .get(&format!("{topic}/{partition}"))
                    .copied();
                self.partitions.push(Partition {
                    topic: topic.to_owned(),
                    partition,
                    next: 0,
                    done,
                });
                self.partitions.len() - 1
            }
        };
        let p = &mut self.partitions[at];
        p.next = p.next.max(offset + 1);
        if p.done.is_some_and(|done| offset < done) {
            self.skipped += 1;
            return;
        }
        self.bytes += m.payload_len();
        self.source.clear();
        let _ = write!(self.source, "kafka:{topic}:{partition}:{offset}");
        let header_tenant = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "tenant").and_then(|h| h.value));
        let ts = m.timestamp().to_millis();
        // Read now, not when the batch began: its first message may come after hours of quiet.
        let now_us = sentra_schemas::time::now_us();
        let input = Input {
            bytes: m.payload().unwrap_or_default(),
            source: &self.source,
            header_tenant,
            fallback_tenant: config.kafka.topic_tenants.get(topic).map(String::as_str),
            reference_us: ts.map_or(now_us, |t| t.saturating_mul(1000)),
            reference_is_event_time: ts.is_some(),
            // A shipper may stamp the message with the event's own time, so the consumer's clock caps it;
            // the message time keeps the bound the same when the record is read again after a restart.
            read_us: Some(ts.map_or(now_us, |t| t.saturating_mul(1000).min(now_us))),
        };
        if let Err(q) = normalizer.normalize_into(&input, &mut self.columns) {
            self.quarantined.push(*q);
        }
    }
}

/// The checkpoint in memory (its offsets cover every stored batch), the offsets not yet committed, and when
/// the checkpoint was last saved.
struct Checkpoints<'a> {
    checkpoint: Checkpoint,
    path: &'a std::path::Path,
    interval: Duration,
    /// Offsets of batches stored since the last save: committed with the next one.
    uncommitted: BTreeMap<(String, i32), i64>,
    saved_at: tokio::time::Instant,
}

impl Checkpoints<'_> {
    /// Records a stored batch's offsets. Its effects are in the engine state now, so a message below them,
    /// delivered again (after a rebalance), is skipped even before the checkpoint is saved.
    fn stored(&mut self, partitions: Vec<Partition>) {
        for Partition {
            topic,
            partition,
            next,
            ..
        } in partitions
        {
            let done = self
                .checkpoint
                .offsets
                .entry(format!("{topic}/{partition}"))
                .or_insert(0);
            *done = (*done).max(next);
            let pending = self.uncommitted.entry((topic, partition)).or_insert(0);
            *pending = (*pending).max(next);
        }
    }

    /// Whether stored batches wait to be committed.
    fn pending(&self) -> bool {
        !self.uncommitted.is_empty()
    }

    /// When the next save is due.
    fn due_at(&self) -> tokio::time::Instant {
        self.saved_at + self.interval
    }

    /// Saves the engine state with the offsets it covers, then commits the offsets of the batches stored
    /// since the last save (never before the state that holds their effects is on disk).
    fn save_and_commit(
        &mut self,
        engine: &Engine,
        consumer: &StreamConsumer,
        stats: &mut RunStats,
    ) -> Result<(), RunError> {
        self.checkpoint.engine = engine.snapshot();
        self.checkpoint.save(self.path)?;
        self.saved_at = tokio::time::Instant::now();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in std::mem::take(&mut self.uncommitted) {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => stats.commits += 1,
            // After a rebalance the partitions may belong to another member, which re-reads from the last
            // commit; the stores deduplicate by id.
            Err(e) => {
                warn!(error = %e, "offset commit failed; batches since the last commit may be re-read (writes are idempotent)")
            }
        }
        Ok(())
    }
}

/// Audit events for emitted signals (and the overrides applied to them). Their time is the signal's window
/// end, so a batch re-read after a crash yields the same record ids and is chained once.
fn signal_audit(signals: &[Signal]) -> Vec<sentra_schemas::audit::AuditEvent> {
    use sentra_schemas::audit::AuditEvent;
    let mut out = Vec::new();
    for s in signals {
        out.push(AuditEvent::new(
            s.tenant.as_str(),
            s.window_end,
            "sentra",
            "signal.emitted",
            &s.id,
            serde_json::json!({"signal": s.signal, "risk_score": s.risk_score, "severity": s.severity.as_str(), "suppressed": s.suppressed}),
        ));
        if let Some(o) = &s.override_applied {
            out.push(AuditEvent::new(
                s.tenant.as_str(),
                s.window_end,
                "sentra",
                "override.applied",
                &s.id,
                serde_json::json!({"override": o.id, "action": o.action, "reason": o.reason}),
            ));
        }
    }
    out
}

/// A stored event a store refused, as a quarantine record carrying the store's reason.
fn refused_record(e: &EventRef<'_>, store: &str, detail: &str) -> Quarantined {
    Quarantined {
        reason: QuarantineReason::Rejected,
        detail: format!("{store} refused event {}: {detail}", e.id),
        tenant: Some(e.tenant.to_owned()),
        source: e.source.to_owned(),
        original: e.original.as_bytes().to_vec(),
    }
}

/// Indexes the batch's forensics documents: events of the configured categories, plus every evidence event
/// of this batch's signals (fetched back from ClickHouse, tenant-scoped, when it was stored in an earlier
/// batch). Returns how many were indexed and the refused ones as quarantine records.
async fn index_forensics(
    es: &ElasticsearchSink,
    clickhouse: &ClickHouseSink,
    events: &arrow::array::RecordBatch,
    signals: &[Signal],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(u64, Vec<Quarantined>), RunError> {
    let rows = EventRows::new(events);
    let mut evidence: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for s in signals {
        evidence
            .entry(s.tenant.as_str())
            .or_default()
            .extend(s.evidence.iter().map(String::as_str));
    }
    let mut docs: Vec<Document> = Vec::new();
    let mut origins: Vec<Quarantined> = Vec::new();
    let mut keep = |e: &EventRef<'_>, docs: &mut Vec<Document>| {
        docs.push(document(es, e));
        origins.push(refused_record(e, "Elasticsearch", ""));
    };
    for e in rows.iter() {
        let is_evidence = evidence
            .get_mut(e.tenant)
            .is_some_and(|ids| ids.remove(e.id));
        if is_evidence || es.config().indexes_category(e.category) {
            keep(&e, &mut docs);
        }
    }
    for (tenant, ids) in &evidence {
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<&str> = ids.iter().copied().collect();
        let stored = with_retry("ClickHouse", shutdown, || {
            clickhouse.events_by_id(tenant, &ids)
        })
        .await?;
        // Events of indexed categories were indexed (or quarantined) when they were stored.
        for e in stored
            .iter()
            .filter(|e| !es.config().indexes_category(&e.category))
        {
            keep(&e.as_event_ref(), &mut docs);
        }
    }
    let refused = with_retry("Elasticsearch", shutdown, || es.index(&docs)).await?;
    let indexed = (docs.len() - refused.len()) as u64;
    let quarantined = refused
        .into_iter()
        .map(|r| {
            let mut q = origins[r.position].clone();
            q.detail = format!("{}(HTTP {}) {}", q.detail, r.status, r.detail);
            q
        })
        .collect();
    Ok((indexed, quarantined))
}

/// Produces each quarantined record's original bytes to `topic`, with why and where from in headers, and
/// waits for the broker to acknowledge every one (retrying transient failures).
/// Names the quarantine topic in retry logs and errors.
const QUARANTINE: &str = "the quarantine topic";

async fn send_to_quarantine(
    producer: &Producer,
    topic: &str,
    items: &[Quarantined],
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), RunError> {
    for q in items {
        // `kafka:<topic>:<partition>:<offset>`; topics may contain ':' only in theory, so split from the right.
        let mut parts = q.source.rsplitn(3, ':');
        let offset = parts.next().unwrap_or_default();
        let partition = parts.next().unwrap_or_default();
        let source_topic = parts
            .next()
            .unwrap_or_default()
            .strip_prefix("kafka:")
            .unwrap_or_default();
        let deliver = || async {
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: "sentra.reason",
                    value: Some(q.reason.as_str()),
                })
                .insert(Header {
                    key: "sentra.detail",
                    value: Some(q.detail.as_str()),
                })
                .insert(Header {
                    key: "sentra.source_topic",
                    value: Some(source_topic),
                })
                .insert(Header {
                    key: "sentra.source_partition",
                    value: Some(partition),
                })
                .insert(Header {
                    key: "sentra.source_offset",
                    value: Some(offset),
                });
            if let Some(t) = &q.tenant {
                headers = headers.insert(Header {
                    key: "sentra.tenant",
                    value: Some(t.as_str()),
                });
            }
            let record = FutureRecord::<[u8], [u8]>::to(topic)
                .payload(&q.original)
                .headers(headers);
            // Any producer failure is worth retrying: the message is still ours until delivered.
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map(|_| ())
                .map_err(|e| SinkError::Unavailable {
                    store: QUARANTINE,
                    detail: e.to_string(),
                })
        };
        with_retry(QUARANTINE, shutdown, deliver).await?;
    }
    Ok(())
}
