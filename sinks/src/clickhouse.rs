//! ClickHouse sink: the analytics store. Events and signals are inserted in batches; an `insert` returns
//! only after ClickHouse acknowledged it, which is what lets the Kafka driver commit offsets afterwards.
//!
//! Tables come from `schemas/clickhouse/*.sql` ([`ClickHouseSink::migrate`]); both are ReplacingMergeTree
//! keyed by the stable ids, so a replayed batch never double-counts.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use clickhouse::insert::Insert;
use clickhouse::{Client, Row};
use sentra_schemas::audit::AuditRecord;
use sentra_schemas::{EventRef, EventRows, Quarantined, Signal, CLICKHOUSE_MIGRATIONS};
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
    /// Days to keep events and quarantined input (ClickHouse TTL); 0 keeps them forever. Rollups and
    /// signals are kept regardless. Applied by `migrate`, which changes the TTL only when it differs.
    pub events_ttl_days: u32,
    /// How inserts travel: LZ4-compressed (the default; ~4× less to send) or plain, which saves the
    /// compression's CPU when ClickHouse is on the same host or a fast local network.
    pub compression: Compression,
    /// Longest wait, in seconds, for one request of the ingest path (an insert, a lookup) to be answered;
    /// a server that accepts the connection and never answers is then unavailable, and the write is
    /// retried, instead of stalling ingestion.
    pub timeout_secs: u64,
}

/// The compression of inserts sent to ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// LZ4 blocks, as ClickHouse's native clients send them.
    Lz4,
    /// Uncompressed.
    None,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "sentra".into(),
            user: "default".into(),
            password: String::new(),
            events_ttl_days: 0,
            compression: Compression::Lz4,
            timeout_secs: 30,
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
            .field("events_ttl_days", &self.events_ttl_days)
            .field("compression", &self.compression)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Writes Sentra's rows to ClickHouse.
#[derive(Clone)]
pub struct ClickHouseSink {
    /// Checks every row against the table's column types as it is written (the crate's default).
    client: Client,
    /// The same connection without that check, for tables already written to by `client` (see `insert`).
    unchecked: Client,
    /// Tables an insert through `client` has succeeded on, in this process.
    checked: Arc<Mutex<BTreeSet<&'static str>>>,
    config: ClickHouseConfig,
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

#[derive(Row, Serialize)]
struct QuarantineRow<'a> {
    tenant: &'a str,
    quarantine_id: String,
    received_at: i64,
    reason: &'a str,
    detail: &'a str,
    source: &'a str,
    #[serde(with = "serde_bytes_as_string")]
    original: &'a [u8],
}

/// ClickHouse `String` columns hold arbitrary bytes; RowBinary writes them as length-prefixed bytes.
mod serde_bytes_as_string {
    pub fn serialize<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
}

/// An event as a row of the `events` table: owned as [`ClickHouseSink::events_by_id`] returns it, borrowed
/// (`StoredEvent<&str>`) as it is inserted. Absent text is stored as `''`. The columns are those of
/// [`sentra_schemas::EVENT_FIELDS`]; read the event with [`StoredEvent::as_event_ref`].
#[derive(Debug, Clone, Row, Serialize, serde::Deserialize)]
pub struct StoredEvent<S = String> {
    tenant: S,
    timestamp: i64,
    event_id: S,
    host: S,
    process_name: S,
    process_pid: Option<u32>,
    dataset: S,
    /// The event's category: what the forensics store chooses the events it indexes by.
    pub category: S,
    event_type: S,
    action: S,
    outcome: S,
    user_name: S,
    target_user: S,
    group_name: S,
    source_ip: S,
    source_port: Option<u16>,
    auth_method: S,
    command: S,
    message: S,
    original: S,
    source: S,
}

impl<'a> From<&EventRef<'a>> for StoredEvent<&'a str> {
    fn from(e: &EventRef<'a>) -> Self {
        Self {
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
        }
    }
}

impl StoredEvent {
    /// The event as the pipeline's borrowed view (empty strings become absent optional fields).
    pub fn as_event_ref(&self) -> EventRef<'_> {
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        EventRef {
            id: &self.event_id,
            tenant: &self.tenant,
            timestamp_us: self.timestamp,
            host: &self.host,
            process_name: &self.process_name,
            process_pid: self.process_pid,
            dataset: &self.dataset,
            category: &self.category,
            event_type: &self.event_type,
            action: &self.action,
            outcome: &self.outcome,
            user: some(&self.user_name),
            target_user: some(&self.target_user),
            group: some(&self.group_name),
            source_ip: some(&self.source_ip),
            source_port: self.source_port,
            auth_method: some(&self.auth_method),
            command: some(&self.command),
            message: &self.message,
            original: &self.original,
            source: &self.source,
        }
    }
}

/// The idempotency key of a quarantined record: the same input from the same place for the same reason.
fn quarantine_id(q: &Quarantined) -> String {
    sentra_schemas::hex_digest(
        &[
            q.source.as_bytes(),
            q.reason.as_str().as_bytes(),
            &q.original,
        ],
        32,
    )
}

/// Renders [`sentra_schemas::CLICKHOUSE_TENANT_ACCESS`] for `tenant` (validated) in `database`, with
/// `service_user` as Sentra's own (unrestricted) user.
pub fn tenant_access_sql(
    tenant: &sentra_schemas::TenantId,
    database: &str,
    service_user: &str,
) -> String {
    let quote = |s: &str| s.replace('`', "``");
    sentra_schemas::CLICKHOUSE_TENANT_ACCESS
        .replace("{db}", &format!("`{}`", quote(database)))
        .replace("{tenant}", tenant.as_str())
        .replace("{service_user}", &quote(service_user))
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// ClickHouse error codes that mean "this data is unacceptable" (a value, not the request, is at fault):
/// CANNOT_PARSE_TEXT 6, CANNOT_PARSE_INPUT_ASSERTION_FAILED 27, CANNOT_PARSE_DATE 38, CANNOT_PARSE_DATETIME 41,
/// TYPE_MISMATCH 53, ARGUMENT_OUT_OF_BOUND 69, CANNOT_CONVERT_TYPE 70, CANNOT_PARSE_NUMBER 72,
/// TOO_LARGE_STRING_SIZE 131, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE 321, VIOLATED_CONSTRAINT 469.
const ROW_LEVEL_CODES: [&str; 11] = [
    "6", "27", "38", "41", "53", "69", "70", "72", "131", "321", "469",
];

/// Codes worth retrying: TIMEOUT_EXCEEDED 159, TOO_MANY_SIMULTANEOUS_QUERIES 202, SOCKET_TIMEOUT 209,
/// NETWORK_ERROR 210, MEMORY_LIMIT_EXCEEDED 241, TABLE_IS_READ_ONLY 242, TOO_MANY_PARTS 252.
const RETRYABLE_CODES: [&str; 7] = ["159", "202", "209", "210", "241", "242", "252"];

fn has_code(text: &str, codes: &[&str]) -> bool {
    codes.iter().any(|c| text.contains(&format!("Code: {c}.")))
}

/// Maps a client error to whose fault it is: transport trouble and server-side overload are retryable,
/// a value ClickHouse cannot accept is the data's fault, anything else the server rejected on its merits
/// is not retryable.
fn classify(e: clickhouse::error::Error) -> SinkError {
    use clickhouse::error::Error as E;
    let detail = e.to_string();
    match e {
        E::Network(_) | E::TimedOut => SinkError::Unavailable {
            store: STORE,
            detail,
        },
        E::BadResponse(ref text) if has_code(text, &RETRYABLE_CODES) => SinkError::Unavailable {
            store: STORE,
            detail,
        },
        E::BadResponse(ref text) if has_code(text, &ROW_LEVEL_CODES) => SinkError::Invalid {
            store: STORE,
            detail,
        },
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

/// One row a store refused, by its index in the written batch, with the store's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Row index in the batch that was written.
    pub row: usize,
    /// The store's reason.
    pub detail: String,
}

/// Rejecting more than this share of a batch row by row looks like a schema or configuration problem,
/// not bad rows: the write fails as a whole instead of quarantining most of the input.
const MAX_REJECTED_SHARE: f64 = 0.5;

impl ClickHouseSink {
    /// A sink for `config` (no I/O yet).
    pub fn new(config: ClickHouseConfig) -> Self {
        let client = Client::default()
            .with_url(&config.url)
            .with_database(&config.database)
            .with_user(&config.user)
            .with_password(&config.password)
            .with_compression(match config.compression {
                Compression::Lz4 => clickhouse::Compression::Lz4,
                Compression::None => clickhouse::Compression::None,
            });
        Self {
            unchecked: client.clone().with_validation(false),
            client,
            checked: Arc::default(),
            config,
        }
    }

    /// Runs `request` for at most `timeout_secs`; past it, ClickHouse is unavailable (retryable).
    async fn bounded<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        let limit = std::time::Duration::from_secs(self.config.timeout_secs);
        tokio::time::timeout(limit, request)
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::Unavailable {
                    store: STORE,
                    detail: format!(
                        "no answer within {}s (clickhouse.timeout_secs)",
                        self.config.timeout_secs
                    ),
                })
            })
    }

    /// Whether the server answers `SELECT 1`, within `clickhouse.timeout_secs`.
    pub async fn ping(&self) -> Result<(), SinkError> {
        self.bounded(async {
            self.client
                .query("SELECT 1")
                .fetch_one::<u8>()
                .await
                .map(|_| ())
                .map_err(classify)
        })
        .await
    }

    /// The underlying client, for queries.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts an insert into `table`. Until one insert into it has succeeded in this process, every row is
    /// checked against the table's column types as it is written, so a table that differs from what this
    /// build writes fails with the column named; after that the per-row check is skipped, which saves ~5 %
    /// of `sentra run`'s CPU (docs/PERFORMANCE.md, run path).
    async fn insert<T: Row>(&self, table: &'static str) -> Result<Insert<T>, SinkError> {
        let checked = self.checked.lock().expect("not poisoned").contains(table);
        let client = if checked {
            &self.unchecked
        } else {
            &self.client
        };
        client.insert::<T>(table).await.map_err(classify)
    }

    /// Ends an insert started by [`Self::insert`]; its success marks `table` as checked.
    async fn end<T: Row>(&self, table: &'static str, insert: Insert<T>) -> Result<(), SinkError> {
        insert.end().await.map_err(classify)?;
        self.checked.lock().expect("not poisoned").insert(table);
        Ok(())
    }

    /// Creates the database, applies every migration in `schemas/clickhouse` not yet recorded in
    /// `schema_migrations`, then sets the events TTL from the config. Returns the names of the migrations
    /// applied now (empty when the schema was current). Safe to run from several instances at once.
    pub async fn migrate(&self) -> Result<Vec<&'static str>, SinkError> {
        let root = Client::default()
            .with_url(&self.config.url)
            .with_user(&self.config.user)
            .with_password(&self.config.password);
        // The first requests are bounded like the ingest path's, so a server that accepts connections and
        // never answers is reported as unavailable; the migrations themselves may take long.
        let done: Vec<u32> = self
            .bounded(async {
                root.query("CREATE DATABASE IF NOT EXISTS ?")
                    .bind(clickhouse::sql::Identifier(&self.config.database))
                    .execute()
                    .await
                    .map_err(classify)?;
                self.client
                    .query(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, \
                         checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) \
                         ENGINE = ReplacingMergeTree ORDER BY version",
                    )
                    .execute()
                    .await
                    .map_err(classify)?;
                self.client
                    .query("SELECT DISTINCT version FROM schema_migrations")
                    .fetch_all()
                    .await
                    .map_err(classify)
            })
            .await?;
        let mut applied = Vec::new();
        for &(version, name, sql) in CLICKHOUSE_MIGRATIONS {
            if done.contains(&version) {
                continue;
            }
            for stmt in sentra_schemas::clickhouse_statements(sql) {
                self.client
                    .query_raw(&stmt)
                    .execute()
                    .await
                    .map_err(classify)?;
            }
            let checksum = sentra_schemas::hex_digest(&[sql.as_bytes()], 64);
            self.client
                .query("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)")
                .bind(version)
                .bind(name)
                .bind(checksum)
                .execute()
                .await
                .map_err(classify)?;
            applied.push(name);
        }
        self.apply_ttl("events", "timestamp").await?;
        self.apply_ttl("quarantine", "received_at").await?;
        Ok(applied)
    }

    /// Makes `table`'s TTL match `events_ttl_days` (on `column`), touching it only when it differs,
    /// because changing a TTL rewrites existing parts.
    async fn apply_ttl(&self, table: &str, column: &str) -> Result<(), SinkError> {
        let engine: String = self
            .client
            .query("SELECT engine_full FROM system.tables WHERE database = ? AND name = ?")
            .bind(&self.config.database)
            .bind(table)
            .fetch_one()
            .await
            .map_err(classify)?;
        let days = self.config.events_ttl_days;
        let want = format!("TTL toDateTime({column}) + toIntervalDay({days})");
        let stmt = match (days, engine.contains(" TTL ")) {
            (0, false) => return Ok(()),
            (0, true) => format!("ALTER TABLE {table} REMOVE TTL"),
            (_, _) if engine.contains(&want) => return Ok(()),
            (_, _) => {
                format!("ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {days} DAY")
            }
        };
        self.client
            .query_raw(&stmt)
            .execute()
            .await
            .map_err(classify)
    }

    /// Inserts a batch of events (with [`sentra_schemas::events_schema`]); returns once ClickHouse
    /// acknowledged every row it accepted. When ClickHouse refuses a value, the batch is split in halves
    /// until the refused rows are isolated; those are returned (for quarantine) and the rest are stored.
    /// Re-inserting the halves that had succeeded is harmless: rows are keyed by event id.
    pub async fn write_events(&self, events: &RecordBatch) -> Result<Vec<RejectedRow>, SinkError> {
        let n = events.num_rows();
        let mut rejected = Vec::new();
        let mut pending = vec![(0, n)];
        while let Some((offset, len)) = pending.pop() {
            if len == 0 {
                continue;
            }
            match self.insert_events(&events.slice(offset, len)).await {
                Ok(()) => {}
                Err(SinkError::Invalid { detail, .. }) if len == 1 => rejected.push(RejectedRow {
                    row: offset,
                    detail,
                }),
                Err(SinkError::Invalid { .. }) => {
                    let half = len / 2;
                    pending.push((offset + half, len - half));
                    pending.push((offset, half));
                }
                Err(e) => return Err(e),
            }
            if n > 1 && rejected.len() as f64 > MAX_REJECTED_SHARE * n as f64 {
                return Err(SinkError::Rejected {
                    store: STORE,
                    detail: format!(
                        "refused {} of {n} rows, which points at the schema or configuration rather than \
                         the data; first refusal: {}",
                        rejected.len(),
                        rejected[0].detail
                    ),
                });
            }
        }
        rejected.sort_by_key(|r| r.row);
        Ok(rejected)
    }

    async fn insert_events(&self, events: &RecordBatch) -> Result<(), SinkError> {
        self.bounded(async {
            let mut insert = self.insert::<StoredEvent<&str>>("events").await?;
            for e in EventRows::new(events).iter() {
                insert
                    .write(&StoredEvent::<&str>::from(&e))
                    .await
                    .map_err(classify)?;
            }
            self.end("events", insert).await
        })
        .await
    }

    /// Stores quarantined input (keyed by source, reason and bytes, so a re-read stores it once); returns
    /// once ClickHouse acknowledged it. Records without a tenant are stored with tenant `""`.
    pub async fn write_quarantine(&self, items: &[Quarantined]) -> Result<(), SinkError> {
        self.bounded(async {
            if items.is_empty() {
                return Ok(());
            }
            let received_at = sentra_schemas::time::now_us();
            let mut insert = self.insert::<QuarantineRow<'_>>("quarantine").await?;
            for q in items {
                let row = QuarantineRow {
                    tenant: q.tenant.as_deref().unwrap_or(""),
                    quarantine_id: quarantine_id(q),
                    received_at,
                    reason: q.reason.as_str(),
                    detail: &q.detail,
                    source: &q.source,
                    original: &q.original,
                };
                insert.write(&row).await.map_err(classify)?;
            }
            self.end("quarantine", insert).await
        })
        .await
    }

    /// Fetches stored events of `tenant` by id (for evidence that was stored in an earlier batch). The
    /// tenant predicate is always part of the query.
    pub async fn events_by_id(
        &self,
        tenant: &str,
        ids: &[&str],
    ) -> Result<Vec<StoredEvent>, SinkError> {
        self.bounded(async {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            self.client
                .query(
                    "SELECT ?fields FROM events WHERE tenant = ? AND event_id IN ? \
                 ORDER BY timestamp, event_id LIMIT 1 BY event_id",
                )
                .bind(tenant)
                .bind(ids)
                .fetch_all()
                .await
                .map_err(classify)
        })
        .await
    }

    /// Inserts `signals`; returns once ClickHouse acknowledged the whole batch.
    pub async fn write_signals(&self, signals: &[Signal]) -> Result<(), SinkError> {
        self.bounded(async {
            if signals.is_empty() {
                return Ok(());
            }
            let mut insert = self.insert::<SignalRow<'_>>("signals").await?;
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
            self.end("signals", insert).await
        })
        .await
    }
}

#[derive(Row, Serialize, serde::Deserialize)]
struct AuditRow {
    tenant: String,
    seq: u64,
    record_id: String,
    at: i64,
    actor: String,
    action: String,
    subject: String,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            tenant: r.tenant,
            seq: r.seq,
            record_id: r.record_id,
            at_us: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

impl ClickHouseSink {
    /// Appends chained audit records; returns once ClickHouse acknowledged them.
    pub async fn write_audit(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        self.bounded(async {
            if records.is_empty() {
                return Ok(());
            }
            let mut insert = self.insert::<AuditRow>("audit").await?;
            for r in records {
                let row = AuditRow {
                    tenant: r.tenant.clone(),
                    seq: r.seq,
                    record_id: r.record_id.clone(),
                    at: r.at_us,
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    subject: r.subject.clone(),
                    details: r.details.clone(),
                    prev_hash: r.prev_hash.clone(),
                    hash: r.hash.clone(),
                };
                insert.write(&row).await.map_err(classify)?;
            }
            self.end("audit", insert).await
        })
        .await
    }

    /// The last audit record of each of `tenants` that has one (where its chain continues).
    pub async fn audit_heads(&self, tenants: &[&str]) -> Result<Vec<AuditRecord>, SinkError> {
        self.bounded(async {
        let rows: Vec<AuditRow> = self
            .client
            .query(
                "SELECT ?fields FROM audit WHERE tenant IN ? ORDER BY tenant, seq DESC LIMIT 1 BY tenant",
            )
            .bind(tenants)
            .fetch_all()
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Which of `record_ids` are already in `tenant`'s chain.
    pub async fn audit_known(
        &self,
        tenant: &str,
        record_ids: &[&str],
    ) -> Result<Vec<String>, SinkError> {
        self.bounded(async {
            self.client
                .query("SELECT record_id FROM audit WHERE tenant = ? AND record_id IN ?")
                .bind(tenant)
                .bind(record_ids)
                .fetch_all()
                .await
                .map_err(classify)
        })
        .await
    }

    /// `tenant`'s whole audit chain in seq order (what `verify` needs).
    pub async fn audit_records(&self, tenant: &str) -> Result<Vec<AuditRecord>, SinkError> {
        let rows: Vec<AuditRow> = self
            .client
            .query("SELECT ?fields FROM audit WHERE tenant = ? ORDER BY seq")
            .bind(tenant)
            .fetch_all()
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Every tenant with an audit chain.
    pub async fn audit_tenants(&self) -> Result<Vec<String>, SinkError> {
        self.client
            .query("SELECT DISTINCT tenant FROM audit ORDER BY tenant")
            .fetch_all()
            .await
            .map_err(classify)
    }

    /// `tenant`'s signals whose window ends within `[from_us, to_us)`, as their JSON documents.
    pub async fn signal_docs(
        &self,
        tenant: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<String>, SinkError> {
        self.client
            .query(
                "SELECT doc FROM signals FINAL WHERE tenant = ? \
                 AND window_end >= fromUnixTimestamp64Micro(?) AND window_end < fromUnixTimestamp64Micro(?) \
                 ORDER BY window_end, signal_id",
            )
            .bind(tenant)
            .bind(from_us)
            .bind(to_us)
            .fetch_all()
            .await
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_never_answers_is_unavailable_not_a_stall() {
        // Accepts connections and holds them open without a word, like a hung server.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().collect();
            drop(held);
        });
        let sink = ClickHouseSink::new(ClickHouseConfig {
            url,
            timeout_secs: 1,
            ..ClickHouseConfig::default()
        });
        let started = std::time::Instant::now();
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            sink.events_by_id("acme", &["e1"]),
        )
        .await
        .expect("the sink gives up on its own");
        let e = answered.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("clickhouse.timeout_secs"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // The same at startup: migrating and the readiness probe give up too.
        for request in [
            Box::pin(async { sink.migrate().await.map(|_| ()) })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
            Box::pin(sink.ping()),
        ] {
            let e = tokio::time::timeout(std::time::Duration::from_secs(20), request)
                .await
                .expect("the sink gives up on its own")
                .unwrap_err();
            assert!(e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn the_events_row_has_a_field_per_declared_column() {
        let row: BTreeSet<&str> = <StoredEvent as Row>::COLUMN_NAMES.iter().copied().collect();
        let declared: BTreeSet<&str> = sentra_schemas::EVENT_COLUMNS.into_iter().collect();
        assert_eq!(row, declared);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = ClickHouseConfig {
            url: "http://x".into(),
            database: "d".into(),
            user: "u".into(),
            password: "hunter2".into(),
            ..ClickHouseConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
