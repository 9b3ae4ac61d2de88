//! What `sentra run` starts beside its loop: the HTTP API, the audit chainer, the forensics indexer and one
//! SOAR delivery worker per destination. The workers are supervised ([`crate::health::supervise`]): one that fails is restarted
//! with backoff, and `/readyz` reports it down until it runs again.

use std::sync::Arc;

use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_sinks::elasticsearch::ElasticsearchSink;
use sentra_soar::audit::AuditLog;
use sentra_soar::queue::WorkerStats;
use sentra_soar::{Deliverer, Destination};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::RunError;
use crate::config::Config;
use crate::health::{supervise, Health};

/// Serves the HTTP API over ClickHouse (and Elasticsearch, when enabled) if `api.listen` is set.
pub async fn serve_api(
    config: &Config,
    clickhouse: &ClickHouseSink,
    es: Option<ElasticsearchSink>,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), RunError> {
    if config.api.listen.is_empty() {
        return Ok(());
    }
    let store = sentra_queries::Store::services(clickhouse.client().clone(), es);
    let api = crate::api::Api::new(&config.api, store, Some(config.clone()))
        .with_health(Arc::clone(health));
    let addr = crate::api::serve(&config.api.listen, api, shutdown.clone())
        .await
        .map_err(|e| RunError::Config(format!("api.listen {}: {e}", config.api.listen)))?;
    info!(%addr, "HTTP API listening");
    Ok(())
}

/// Starts the audit chainer and, when SOAR is enabled, one delivery worker per destination, each under
/// supervision; returns the delivery workers, which stop at shutdown.
pub fn start(
    config: &Config,
    client: &sentra_kafka::ClientConfig,
    clickhouse: &ClickHouseSink,
    audit: &AuditLog,
    destinations: &[Destination],
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<Option<WorkerStats>>> {
    {
        let (client, topic, rx) = (client.clone(), config.audit.topic.clone(), shutdown.clone());
        let group = format!("{}-audit", config.kafka.group_id);
        let store = clickhouse.clone();
        let anchoring = config.audit.anchoring();
        if anchoring.is_none() {
            warn!("audit anchors are off: set SENTRA_AUDIT_ANCHOR_KEY so `sentra audit verify` can tell truncated or rewritten chains");
        }
        let chainer = supervise(
            Arc::clone(health),
            "audit chainer".into(),
            shutdown.clone(),
            move || {
                let (client, group, topic, store, anchoring, rx) = (
                    client.clone(),
                    group.clone(),
                    topic.clone(),
                    store.clone(),
                    anchoring.clone(),
                    rx.clone(),
                );
                async move {
                    sentra_soar::audit::chain(&client, &group, &topic, &store, anchoring, rx).await
                }
            },
        );
        tokio::spawn(async move {
            if let Some(n) = chainer.await {
                info!(chained = n, "audit chainer stopped");
            }
        });
    }
    let mut workers = Vec::new();
    if !config.soar.enabled() {
        return workers;
    }
    for d in destinations {
        let (client, soar, rx) = (client.clone(), config.soar.clone(), shutdown.clone());
        let audit = audit.clone();
        let prefix = config.kafka.group_id.clone();
        let deliverer = Arc::new(Deliverer::new(d.clone(), &config.soar));
        let name = format!("SOAR delivery to {}", d.name);
        let worker = supervise(
            Arc::clone(health),
            name.clone(),
            shutdown.clone(),
            move || {
                let (client, prefix, soar, deliverer, rx, audit) = (
                    client.clone(),
                    prefix.clone(),
                    soar.clone(),
                    Arc::clone(&deliverer),
                    rx.clone(),
                    audit.clone(),
                );
                async move {
                    sentra_soar::queue::deliver(
                        &client,
                        &prefix,
                        &soar,
                        &deliverer,
                        rx,
                        Some(&audit),
                    )
                    .await
                }
            },
        );
        workers.push(tokio::spawn(async move {
            let stats = worker.await;
            info!(worker = %name, ?stats, "delivery stopped");
            stats
        }));
    }
    workers
}

/// Starts the forensics indexer under supervision.
pub fn index_forensics(
    config: &Config,
    client: &sentra_kafka::ClientConfig,
    clickhouse: &ClickHouseSink,
    elasticsearch: ElasticsearchSink,
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) {
    let indexer = Arc::new(super::forensics::Indexer {
        client: client.clone(),
        group: format!("{}-forensics", config.kafka.group_id),
        topic: super::forensics::topic(config),
        clickhouse: clickhouse.clone(),
        elasticsearch,
    });
    let rx = shutdown.clone();
    let worker = supervise(
        Arc::clone(health),
        "forensics indexer".into(),
        shutdown.clone(),
        move || {
            let (indexer, rx) = (Arc::clone(&indexer), rx.clone());
            async move { indexer.run(rx).await }
        },
    );
    tokio::spawn(async move {
        if let Some(n) = worker.await {
            info!(indexed = n, "forensics indexer stopped");
        }
    });
}
