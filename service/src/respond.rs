//! The responders' wiring: the playbook engine, approvals, the audit trail's checks and bundles, and the SOAR
//! dead-letter queue's listing and replay. Thin wiring from the configuration to `sentra_soar`; the logic
//! lives there.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sentra_sinks::clickhouse::ClickHouseSink;
use sentra_soar::audit::{verify_trail, AuditError, AuditLog, Verified};
use sentra_soar::playbooks::definition;
use sentra_soar::playbooks::engine::{self, EngineConfig, EngineStats};
use sentra_soar::playbooks::run::Run;
use sentra_soar::playbooks::steps::Executor;
use sentra_soar::Deliverer;
use tokio::sync::watch;

use crate::config::Config;
/// Why a responder command failed.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// Kafka could not be reached or used.
    #[error("Kafka: {0} (check kafka.brokers and that the broker is reachable)")]
    Kafka(#[from] sentra_kafka::KafkaError),
    /// ClickHouse could not be read.
    #[error(transparent)]
    Store(#[from] sentra_sinks::SinkError),
    /// The configuration or the request cannot be used; the message says what to change.
    #[error("configuration: {0}")]
    Config(String),
    /// The audit trail does not verify; the message says what is wrong and what to do.
    #[error("{0}")]
    Broken(String),
}

impl From<AuditError> for RespondError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Kafka(e) => Self::Kafka(e),
            AuditError::Store(e) => Self::Store(e),
        }
    }
}

fn err(e: impl std::fmt::Display) -> RespondError {
    RespondError::Config(e.to_string())
}

/// Loads the playbooks named by `soar.playbooks_dir`, checked against the configured destinations.
pub fn load_playbooks(config: &Config) -> Result<Vec<definition::Playbook>, RespondError> {
    let dir = config.soar.playbooks_dir.as_deref().ok_or_else(|| {
        err("soar.playbooks_dir is not set: point it at a folder of playbook *.yaml files")
    })?;
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| err(p.join("; ")))?;
    let names: Vec<&str> = destinations.iter().map(|d| d.name.as_str()).collect();
    definition::load(dir, &names).map_err(|p| err(p.join("\n  - ")))
}

/// Runs the playbook engine until `shutdown` (`sentra playbooks run`).
pub async fn run_playbooks(
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<EngineStats, RespondError> {
    let playbooks = load_playbooks(config)?;
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| err(p.join("; ")))?;
    let client = config.kafka_client();
    for topic in [
        &config.soar.topic,
        &config.soar.runs_topic,
        &config.audit.topic,
    ] {
        sentra_kafka::topics::ensure(&client, topic).await?;
    }
    let executor = Executor::new(
        destinations
            .into_iter()
            .map(|d| Deliverer::new(d, &config.soar))
            .collect(),
        config.soar.scripts_dir.clone(),
    );
    let audit = AuditLog::new(&client, &config.audit.topic)?;
    let engine_config = EngineConfig {
        client,
        group: format!("{}-playbooks", config.kafka.group_id),
        signals_topic: config.soar.topic.clone(),
        runs_topic: config.soar.runs_topic.clone(),
    };
    engine::run_engine(&engine_config, playbooks, executor, Some(audit), shutdown)
        .await
        .map_err(err)
}

/// Every playbook run, oldest first (`sentra approvals list` shows those awaiting approval).
pub async fn runs(config: &Config) -> Result<Vec<Run>, RespondError> {
    let runs = engine::load_runs(
        &config.kafka_client(),
        &config.soar.runs_topic,
        Duration::from_secs(2),
    )
    .await?;
    let mut all: Vec<Run> = runs.all().cloned().collect();
    all.sort_by_key(|r| (r.created_us, r.id.clone()));
    Ok(all)
}

/// Approves or rejects run `id` (`sentra approvals approve|reject`).
pub async fn decide(
    config: &Config,
    id: &str,
    approve: bool,
    by: &str,
    reason: &str,
) -> Result<Run, RespondError> {
    decide_for(config, None, id, approve, by, reason)
        .await
        .map_err(err)
}

/// [`decide`] on behalf of `tenant` (the HTTP API): another tenant's run is unknown to it.
pub async fn decide_for(
    config: &Config,
    tenant: Option<&str>,
    id: &str,
    approve: bool,
    by: &str,
    reason: &str,
) -> Result<Run, engine::EngineError> {
    let client = config.kafka_client();
    let audit = AuditLog::new(&client, &config.audit.topic)?;
    engine::decide(
        &client,
        &config.soar.runs_topic,
        Some(&audit),
        tenant,
        id,
        approve,
        by,
        reason,
    )
    .await
}

/// Verifies the audit trails (`sentra audit verify`): each chain on its own and against the anchors on
/// `audit.anchor_topic` (checked with `audit.anchor_key`); one line per tenant. An error names every
/// broken trail: the first edited, removed or reordered record, a truncated or rewritten chain, or
/// anchors that do not verify.
pub async fn audit_verify(
    config: &Config,
    tenants: &[String],
) -> Result<Vec<String>, RespondError> {
    let store = ClickHouseSink::new(config.clickhouse.clone());
    let key = config.audit.key();
    let results = sentra_soar::audit::verify_trails(
        &store,
        &config.kafka_client(),
        &config.audit.anchor_topic,
        key.as_ref(),
        tenants,
    )
    .await?;
    let mut lines = Vec::new();
    let mut broken = Vec::new();
    for (tenant, r) in results {
        match r {
            Ok(v) => lines.push(intact_line(&tenant, v)),
            Err(b) => broken.push(b.to_string()),
        }
    }
    if broken.is_empty() {
        Ok(lines)
    } else {
        Err(RespondError::Broken(broken.join("\n")))
    }
}

/// The line `sentra audit verify` prints for a trail that verifies.
fn intact_line(tenant: &str, v: Verified) -> String {
    match v.anchored {
        Some(seq) => format!(
            "{tenant}: {} records, anchored up to seq {seq}, chain intact",
            v.records
        ),
        None => format!(
            "{tenant}: {} records, not anchored, chain intact",
            v.records
        ),
    }
}

/// Writes an auditor's zip for `tenant` between `from_us` and `to_us` into `out_dir`; returns its path.
pub async fn audit_bundle(
    config: &Config,
    tenant: &str,
    from_us: i64,
    to_us: i64,
    out_dir: &Path,
) -> Result<PathBuf, RespondError> {
    sentra_schemas::TenantId::check(tenant).map_err(err)?;
    let store = ClickHouseSink::new(config.clickhouse.clone());
    let chain = store.audit_records(tenant).await?;
    let mut anchors =
        sentra_soar::anchor::read(&config.kafka_client(), &config.audit.anchor_topic).await?;
    let anchors = anchors.remove(tenant).unwrap_or_default();
    let key = config.audit.key();
    let verification = match verify_trail(tenant, &chain, &anchors, key.as_ref()) {
        Ok(v) => format!(
            "INTACT: {} (hash chain from record 1, checked against its anchors).",
            intact_line(tenant, v)
        ),
        Err(b) => format!("BROKEN: {b}"),
    };
    let in_range = |at: i64| at >= from_us && at < to_us;
    let signals = store.signal_docs(tenant, from_us, to_us).await?;
    let runs: Vec<Run> = runs(config)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.tenant == tenant && in_range(r.created_us))
        .collect();
    let records: Vec<_> = chain.iter().filter(|r| in_range(r.at_us)).collect();
    let decisions: Vec<_> = records
        .iter()
        .filter(|r| r.action.starts_with("approval.") || r.action == "override.applied")
        .collect();

    let now = sentra_schemas::time::now_us();
    let stamp = |us: i64| sentra_schemas::time::format_rfc3339_us(us)[..19].replace(':', "");
    let path = out_dir.join(format!(
        "sentra-audit-{tenant}-{}-{}-generated-{}.zip",
        stamp(from_us),
        stamp(to_us),
        stamp(now)
    ));
    let lines = |items: Vec<String>| items.join("\n") + "\n";
    let json_lines = |v: Vec<serde_json::Value>| lines(v.iter().map(|x| x.to_string()).collect());
    let readme = format!(
        "Sentra audit bundle\n===================\n\nTenant: {tenant}\nPeriod: {} to {} (UTC)\nGenerated: {}\n\n\
         verification.txt   result of re-computing the tenant's whole audit hash chain and checking its anchors\n\
         audit.jsonl        the audit records of the period (each with seq, prev_hash, hash)\n\
         decisions.jsonl    approvals requested and decided, overrides applied (subset of audit.jsonl)\n\
         signals.jsonl      the signals of the period, as Sentra emitted them\n\
         playbook_runs.jsonl playbook runs created in the period, with their step logs\n\n\
         To check a record: hash = SHA-256 over length-prefixed prev_hash, seq, tenant, record_id, at, actor,\n\
         action, subject, details (see sentra_schemas::audit); `sentra audit verify --tenant {tenant}` re-checks\n\
         the live chain.\n",
        sentra_schemas::time::format_rfc3339_us(from_us),
        sentra_schemas::time::format_rfc3339_us(to_us),
        sentra_schemas::time::format_rfc3339_us(now),
    );
    let files: Vec<(&str, String)> = vec![
        ("README.txt", readme),
        ("verification.txt", verification + "\n"),
        (
            "audit.jsonl",
            json_lines(
                records
                    .iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect(),
            ),
        ),
        (
            "decisions.jsonl",
            json_lines(
                decisions
                    .iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect(),
            ),
        ),
        ("signals.jsonl", lines(signals)),
        (
            "playbook_runs.jsonl",
            json_lines(
                runs.iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect(),
            ),
        ),
    ];
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(out_dir)?;
        sentra_sinks::durable::replace(&path, |f| {
            let mut zip = zip::ZipWriter::new(f);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (name, body) in &files {
                zip.start_file(*name, options)
                    .map_err(std::io::Error::other)?;
                zip.write_all(body.as_bytes())?;
            }
            zip.finish().map_err(std::io::Error::other)?;
            Ok(())
        })
    };
    write().map_err(|e| err(format!("writing {}: {e}", path.display())))?;
    Ok(path)
}

/// The SOAR dead letters not yet replayed (`sentra soar dlq list`).
pub async fn soar_dlq_list(
    config: &Config,
) -> Result<Vec<sentra_soar::queue::DeadLetter>, RespondError> {
    sentra_soar::queue::dlq_list(
        &config.kafka_client(),
        &config.kafka.group_id,
        &config.soar,
        Duration::from_secs(3),
    )
    .await
    .map_err(|e| RespondError::Config(e.to_string()))
}

/// Re-sends the pending SOAR dead letters (`sentra soar dlq replay`): (delivered, failed again).
pub async fn soar_dlq_replay(
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(u64, u64), RespondError> {
    let destinations = config
        .soar
        .resolve(|k| std::env::var(k).ok())
        .map_err(|p| RespondError::Config(p.join("; ")))?;
    sentra_soar::queue::dlq_replay(
        &config.kafka_client(),
        &config.kafka.group_id,
        &config.soar,
        &destinations,
        Duration::from_secs(3),
        shutdown,
    )
    .await
    .map_err(|e| RespondError::Config(e.to_string()))
}
