//! ClickHouse sink: the analytics store. Events and signals are inserted in batches; an `insert` returns
//! only after ClickHouse acknowledged it, which is what lets the Kafka driver commit offsets afterwards.
//!
//! Tables come from `schemas/clickhouse/*.sql` ([`ClickHouseSink::migrate`]); both are ReplacingMergeTree
//! keyed by the stable ids, so a replayed batch never double-counts.

use arrow::array::RecordBatch;
use clickhouse::{Client, Row};
use sentra_schemas::{EventRows, Signal, CLICKHOUSE_MIGRATIONS};
use serde::Serialize;

use crate::SinkError;

const STORE: &str = "ClickHouse";

/// Connection settings for the ClickHouse sink (`[clickhouse]` in `sentra.toml`).
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding Sentra's tables (created by `migrate`).
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (never logged); prefer `SENTRA_CLICKHOUSE_PASSWORD` over writing it in a file.
    pub password: String,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "sentra".into(),
            user: "default".into(),
            password: String::new(),
        }
    }
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .finish()
    }
}

/// Writes Sentra's rows to ClickHouse.
#[derive(Clone)]
pub struct ClickHouseSink {
    client: Client,
    config: ClickHouseConfig,
}

#[derive(Row, Serialize)]
struct EventRow<'a> {
    tenant: &'a str,
    timestamp: i64,
    event_id: &'a str,
    host: &'a str,
    process_name: &'a str,
    process_pid: Option<u32>,
    dataset: &'a str,
    category: &'a str,
    event_type: &'a str,
    action: &'a str,
    outcome: &'a str,
    user_name: &'a str,
    target_user: &'a str,
    group_name: &'a str,
    source_ip: &'a str,
    source_port: Option<u16>,
    auth_method: &'a str,
    command: &'a str,
    message: &'a str,
    original: &'a str,
    source: &'a str,
}

#[derive(Row, Serialize)]
struct SignalRow<'a> {
    tenant: &'a str,
    signal_id: &'a str,
    signal: &'a str,
    window_start: i64,
    window_end: i64,
    severity: &'a str,
    risk_score: f64,
    count: u64,
    user_name: &'a str,
    source_ip: &'a str,
    hosts: &'a [String],
    mitre: Vec<&'a str>,
    compliance: &'a [String],
    intent: &'a str,
    narrative: &'a str,
    recommendation: &'a str,
    evidence: &'a [String],
    doc: String,
    suppressed: bool,
    override_id: &'a str,
    override_reason: &'a str,
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Maps a client error to whose fault it is: transport trouble and server-side overload are retryable,
/// anything the server rejected on its merits is not.
fn classify(e: clickhouse::error::Error) -> SinkError {
    use clickhouse::error::Error as E;
    let detail = e.to_string();
    match e {
        E::Network(_) | E::TimedOut => SinkError::Unavailable {
            store: STORE,
            detail,
        },
        // Codes worth retrying: TIMEOUT_EXCEEDED 159, TOO_MANY_SIMULTANEOUS_QUERIES 202, SOCKET_TIMEOUT 209,
        // NETWORK_ERROR 210, MEMORY_LIMIT_EXCEEDED 241, TABLE_IS_READ_ONLY 242, TOO_MANY_PARTS 252.
        E::BadResponse(ref text)
            if ["159", "202", "209", "210", "241", "242", "252"]
                .iter()
                .any(|c| text.contains(&format!("Code: {c}."))) =>
        {
            SinkError::Unavailable {
                store: STORE,
                detail,
            }
        }
        E::BadResponse(ref text)
            if text.starts_with("5") || text.contains("Service Unavailable") =>
        {
            SinkError::Unavailable {
                store: STORE,
                detail,
            }
        }
        _ => SinkError::Rejected {
            store: STORE,
            detail,
        },
    }
}

impl ClickHouseSink {
    /// A sink for `config` (no I/O yet).
    pub fn new(config: ClickHouseConfig) -> Self {
        let client = Client::default()
            .with_url(&config.url)
            .with_database(&config.database)
            .with_user(&config.user)
            .with_password(&config.password);
        Self { client, config }
    }

    /// The underlying client, for queries.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the database and applies every migration in `schemas/clickhouse`, idempotently.
    pub async fn migrate(&self) -> Result<(), SinkError> {
        let root = Client::default()
            .with_url(&self.config.url)
            .with_user(&self.config.user)
            .with_password(&self.config.password);
        root.query("CREATE DATABASE IF NOT EXISTS ?")
            .bind(clickhouse::sql::Identifier(&self.config.database))
            .execute()
            .await
            .map_err(classify)?;
        for (_version, _name, sql) in CLICKHOUSE_MIGRATIONS {
            for stmt in statements(sql) {
                self.client
                    .query_raw(&stmt)
                    .execute()
                    .await
                    .map_err(classify)?;
            }
        }
        Ok(())
    }

    /// Inserts a batch of events (with [`sentra_schemas::events_schema`]); returns once ClickHouse
    /// acknowledged the whole batch.
    pub async fn write_events(&self, events: &RecordBatch) -> Result<(), SinkError> {
        if events.num_rows() == 0 {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<EventRow<'_>>("events")
            .await
            .map_err(classify)?;
        for e in EventRows::new(events).iter() {
            let row = EventRow {
                tenant: e.tenant,
                timestamp: e.timestamp_us,
                event_id: e.id,
                host: e.host,
                process_name: e.process_name,
                process_pid: e.process_pid,
                dataset: e.dataset,
                category: e.category,
                event_type: e.event_type,
                action: e.action,
                outcome: e.outcome,
                user_name: e.user.unwrap_or(""),
                target_user: e.target_user.unwrap_or(""),
                group_name: e.group.unwrap_or(""),
                source_ip: e.source_ip.unwrap_or(""),
                source_port: e.source_port,
                auth_method: e.auth_method.unwrap_or(""),
                command: e.command.unwrap_or(""),
                message: e.message,
                original: e.original,
                source: e.source,
            };
            insert.write(&row).await.map_err(classify)?;
        }
        insert.end().await.map_err(classify)
    }

    /// Inserts `signals`; returns once ClickHouse acknowledged the whole batch.
    pub async fn write_signals(&self, signals: &[Signal]) -> Result<(), SinkError> {
        if signals.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<SignalRow<'_>>("signals")
            .await
            .map_err(classify)?;
        for s in signals {
            let row = SignalRow {
                tenant: s.tenant.as_str(),
                signal_id: &s.id,
                signal: &s.signal,
                window_start: s.window_start,
                window_end: s.window_end,
                severity: s.severity.as_str(),
                risk_score: s.risk_score,
                count: s.count,
                user_name: opt(&s.user),
                source_ip: opt(&s.ip),
                hosts: &s.hosts,
                mitre: s.mitre.iter().map(|m| m.technique.as_str()).collect(),
                compliance: &s.compliance,
                intent: &s.intent,
                narrative: &s.narrative,
                recommendation: &s.recommendation,
                evidence: &s.evidence,
                doc: serde_json::to_string(s).unwrap_or_default(),
                suppressed: s.suppressed,
                override_id: s.override_applied.as_ref().map_or("", |o| o.id.as_str()),
                override_reason: s
                    .override_applied
                    .as_ref()
                    .map_or("", |o| o.reason.as_str()),
            };
            insert.write(&row).await.map_err(classify)?;
        }
        insert.end().await.map_err(classify)
    }
}

/// Splits a migration file into statements: `;` at a line end terminates one; `--` comment lines go.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            let stmt = cur.trim().trim_end_matches(';').to_owned();
            out.push(stmt);
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_ddl_statements() {
        for (_, name, sql) in CLICKHOUSE_MIGRATIONS {
            let stmts = statements(sql);
            assert!(!stmts.is_empty(), "{name} has no statement");
            for s in &stmts {
                assert!(
                    s.starts_with("CREATE") || s.starts_with("ALTER"),
                    "{name}: {s}"
                );
                assert!(!s.ends_with(';') && !s.contains("--"), "{name}: {s}");
            }
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = ClickHouseConfig {
            url: "http://x".into(),
            database: "d".into(),
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
