//! What `sentra run` starts beside its loop: the HTTP API, the audit chainer and one SOAR delivery worker
//! per destination.

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

/// Serves the HTTP API over ClickHouse (and Elasticsearch, when enabled) if `api.listen` is set.
pub async fn serve_api(
    config: &Config,
    clickhouse: &ClickHouseSink,
    es: Option<ElasticsearchSink>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), RunError> {
    if config.api.listen.is_empty() {
        return Ok(());
    }
    let store = sentra_queries::Store::services(clickhouse.client().clone(), es);
    let api = crate::api::Api::new(&config.api, store, Some(config.clone()));
    let addr = crate::api::serve(&config.api.listen, api, shutdown.clone())
        .await
        .map_err(|e| RunError::Config(format!("api.listen {}: {e}", config.api.listen)))?;
    info!(%addr, "HTTP API listening");
    Ok(())
}

/// Starts the audit chainer and, when SOAR is enabled, one delivery worker per destination; returns the
/// delivery workers, which stop at shutdown.
pub fn start(
    config: &Config,
    client: &sentra_kafka::ClientConfig,
    clickhouse: &ClickHouseSink,
    audit: &AuditLog,
    destinations: &[Destination],
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<Result<WorkerStats, sentra_soar::queue::QueueError>>> {
    {
        let (client, topic, rx) = (client.clone(), config.audit.topic.clone(), shutdown.clone());
        let group = format!("{}-audit", config.kafka.group_id);
        let store = clickhouse.clone();
        let anchoring = config.audit.anchoring();
        if anchoring.is_none() {
            warn!("audit anchors are off: set SENTRA_AUDIT_ANCHOR_KEY so `sentra audit verify` can tell truncated or rewritten chains");
        }
        tokio::spawn(async move {
            match sentra_soar::audit::chain(&client, &group, &topic, &store, anchoring, rx).await {
                Ok(n) => info!(chained = n, "audit chainer stopped"),
                Err(e) => warn!(error = %e, "audit chainer stopped"),
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
        let deliverer = Deliverer::new(d.clone(), &config.soar);
        workers.push(tokio::spawn(async move {
            let name = deliverer.destination().name.clone();
            let r =
                sentra_soar::queue::deliver(&client, &prefix, &soar, &deliverer, rx, Some(&audit))
                    .await;
            match &r {
                Ok(stats) => info!(destination = %name, ?stats, "delivery stopped"),
                Err(e) => warn!(destination = %name, error = %e, "delivery stopped"),
            }
            r
        }));
    }
    workers
}
