//! The Query Routing Engine: an analyst of one tenant asks in plain English; Sentra plans a typed
//! [`Intent`](intent::Intent), picks the store, compiles a parameter-bound query, runs it scoped to the
//! caller's tenant, and answers with rows, the query it ran and a calm summary.
//!
//! - [`planner`]: the deterministic planner (the lexicon's tables, time phrases and the tenant's
//!   [`Vocabulary`] of names).
//! - [`vocabulary`]: the users, hosts and addresses a tenant's data has seen, loaded per tenant.
//! - [`sql`]: Intent → DataFusion SQL (embedded store) or ClickHouse SQL.
//! - [`summary`]: the plain-language paragraph.
//!
//! The tenant never comes from the question: it is the caller's identity, injected by the compiler
//! (ClickHouse) or by which partition directory is registered at all (embedded store).

#![warn(missing_docs)]

pub mod dsl;
pub mod intent;
mod lexicon;
pub mod llm;
pub mod planner;
pub mod sql;
pub mod summary;
pub mod vocabulary;
mod when;
mod words;

pub use vocabulary::{Vocabularies, Vocabulary};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::scalar::ScalarValue;
use sentra_schemas::TenantId;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::intent::{Intent, Subject, What};
use crate::sql::{compile, Compiled, Dialect, Param};

/// Longest a question may run.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Where answers come from.
#[derive(Clone)]
pub enum Store {
    /// The embedded store written by `sentra replay` (its data directory).
    Embedded(PathBuf),
    /// ClickHouse (analytics and signals).
    ClickHouse(Box<clickhouse::Client>),
    /// ClickHouse for analytics and signals, Elasticsearch for raw-event listings (forensics).
    Services(Box<Services>),
}

impl Store {
    /// The ClickHouse client, for service stores.
    pub fn clickhouse(&self) -> Option<&clickhouse::Client> {
        match self {
            Store::Embedded(_) => None,
            Store::ClickHouse(c) => Some(c),
            Store::Services(s) => Some(&s.clickhouse),
        }
    }

    /// The forensics store, when there is one.
    pub fn elasticsearch(&self) -> Option<&sentra_sinks::elasticsearch::ElasticsearchSink> {
        match self {
            Store::Services(s) => Some(&s.elasticsearch),
            _ => None,
        }
    }

    /// ClickHouse, with Elasticsearch for listings when `elasticsearch` is configured.
    pub fn services(
        clickhouse: clickhouse::Client,
        elasticsearch: Option<sentra_sinks::elasticsearch::ElasticsearchSink>,
    ) -> Self {
        match elasticsearch {
            Some(elasticsearch) => Store::Services(Box::new(Services {
                clickhouse,
                elasticsearch,
            })),
            None => Store::ClickHouse(Box::new(clickhouse)),
        }
    }
}

/// The service stores.
#[derive(Clone)]
pub struct Services {
    /// Analytics and signals.
    pub clickhouse: clickhouse::Client,
    /// Forensics: raw-event listings.
    pub elasticsearch: sentra_sinks::elasticsearch::ElasticsearchSink,
}

/// An answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// `embedded`, `clickhouse` or `elasticsearch`.
    pub engine: &'static str,
    /// Why that engine.
    pub why: String,
    /// How the question was understood.
    pub intent: Intent,
    /// The queries run (placeholders shown; values are bound separately).
    pub query: Vec<String>,
    /// Result columns, in order.
    pub columns: Vec<String>,
    /// Result rows (of the first query), column name → value.
    pub rows: Vec<Map<String, Value>>,
    /// A calm one-paragraph summary.
    pub summary: String,
}

/// Rows of one query, with their column order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, column name → value.
    pub rows: Vec<Map<String, Value>>,
}

/// Why a question got no answer. The messages are for the analyst: no internals.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The question could not be understood.
    #[error(transparent)]
    Plan(#[from] planner::PlanError),
    /// The store failed or timed out.
    #[error(
        "the {engine} store could not answer ({detail}); try a narrower question or try again"
    )]
    Store {
        /// Which store.
        engine: &'static str,
        /// Short reason.
        detail: String,
    },
}

/// Answers `question` for `tenant` at time `now_us`.
pub async fn ask(
    store: &Store,
    tenant: &TenantId,
    question: &str,
    now_us: i64,
) -> Result<Answer, AskError> {
    ask_with(store, tenant, question, now_us, None).await
}

/// Answers `question` with the LLM planner when one is given, falling back to the deterministic planner on
/// any model failure (the answer's intent notes say which planned it). The tenant's vocabulary is loaded
/// afresh; a long-lived caller keeps a [`Vocabularies`] and uses [`ask_cached`].
pub async fn ask_with(
    store: &Store,
    tenant: &TenantId,
    question: &str,
    now_us: i64,
    llm: Option<&llm::LlmPlanner>,
) -> Result<Answer, AskError> {
    ask_cached(store, &Vocabularies::new(), tenant, question, now_us, llm).await
}

/// [`ask_with`], reusing `tenant`'s vocabulary from `vocabularies` (which must belong to `store`) while it
/// is fresh.
pub async fn ask_cached(
    store: &Store,
    vocabularies: &Vocabularies,
    tenant: &TenantId,
    question: &str,
    now_us: i64,
    llm: Option<&llm::LlmPlanner>,
) -> Result<Answer, AskError> {
    if question.chars().count() > planner::MAX_QUESTION_CHARS {
        return Err(planner::PlanError::TooLong.into());
    }
    let mut fallback_note = None;
    if let Some(model) = llm {
        match model.plan(question, now_us).await {
            Ok(intent) => return answer(store, tenant, intent).await,
            Err(e) => {
                tracing::warn!(reason = %e, "LLM planner failed; using the deterministic planner");
                fallback_note = Some("deterministic planner (the language model was not usable)");
            }
        }
    }
    let known = known_names(store, vocabularies, tenant).await;
    let mut intent = planner::plan(question, now_us, &known)?;
    intent.notes.extend(fallback_note.map(str::to_owned));
    answer(store, tenant, intent).await
}

/// `tenant`'s vocabulary: from `vocabularies` while fresh, else loaded from `store` and kept there.
pub async fn known_names(
    store: &Store,
    vocabularies: &Vocabularies,
    tenant: &TenantId,
) -> Arc<Vocabulary> {
    if let Some(known) = vocabularies.fresh(tenant) {
        return known;
    }
    let known = Arc::new(load_vocabulary(store, tenant).await);
    vocabularies.keep(tenant, known.clone());
    known
}

/// Longest loading a vocabulary may take before questions are planned without one.
const VOCABULARY_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads the users, hosts and source addresses `tenant`'s data has seen, with the same tenant scoping as
/// every answer. A store that cannot say gives an empty vocabulary: names are then recognised only after
/// keywords ("user alice", "host web-1").
pub async fn load_vocabulary(store: &Store, tenant: &TenantId) -> Vocabulary {
    let dialect = match store {
        Store::Embedded(_) => Dialect::DataFusion,
        Store::ClickHouse(_) | Store::Services(_) => Dialect::ClickHouse,
    };
    let load = async {
        let (mut users, mut hosts, mut ips) = (Vec::new(), Vec::new(), Vec::new());
        for (kind, query) in vocabulary::queries(dialect) {
            let table = match store {
                Store::Embedded(dir) => embedded(dir, tenant, &query).await,
                Store::ClickHouse(client) => clickhouse_rows(client, tenant, &query).await,
                Store::Services(s) => clickhouse_rows(&s.clickhouse, tenant, &query).await,
            }?;
            let values = table
                .rows
                .iter()
                .filter_map(|r| r.get("value").and_then(Value::as_str).map(str::to_owned));
            match kind {
                vocabulary::Kind::User => users.extend(values),
                vocabulary::Kind::Host => hosts.extend(values),
                vocabulary::Kind::Ip => ips.extend(values),
            }
        }
        Ok::<_, String>(Vocabulary::new(users, hosts, ips))
    };
    match tokio::time::timeout(VOCABULARY_TIMEOUT, load).await {
        Ok(Ok(known)) => known,
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "the tenant's vocabulary could not be loaded");
            Vocabulary::default()
        }
        Err(_) => {
            tracing::warn!("the tenant's vocabulary took too long to load");
            Vocabulary::default()
        }
    }
}

/// Runs an already planned `intent` (from the deterministic planner or a validated LLM plan).
pub async fn answer(store: &Store, tenant: &TenantId, intent: Intent) -> Result<Answer, AskError> {
    if let (Store::Services(s), Subject::Events, What::List) = (store, intent.subject, intent.what)
    {
        return forensic_listing(&s.elasticsearch, tenant, intent).await;
    }
    let (engine, dialect, why) = route(store, &intent);
    let compiled = compile(&intent, dialect);
    let run = async {
        let mut results = Vec::new();
        for c in &compiled {
            results.push(match store {
                Store::Embedded(dir) => embedded(dir, tenant, c).await,
                Store::ClickHouse(client) => clickhouse_rows(client, tenant, c).await,
                Store::Services(s) => clickhouse_rows(&s.clickhouse, tenant, c).await,
            }?);
        }
        Ok::<_, String>(results)
    };
    let results = tokio::time::timeout(QUERY_TIMEOUT, run)
        .await
        .map_err(|_| AskError::Store {
            engine,
            detail: format!("no answer within {} s", QUERY_TIMEOUT.as_secs()),
        })?
        .map_err(|detail| AskError::Store { engine, detail })?;
    let summary = summary::summarize(&intent, tenant.as_str(), &results);
    let first = results.into_iter().next().unwrap_or_default();
    Ok(Answer {
        engine,
        why,
        query: compiled.iter().map(|c| c.sql.clone()).collect(),
        columns: first.columns,
        rows: first.rows,
        intent,
        summary,
    })
}

fn route(store: &Store, intent: &Intent) -> (&'static str, Dialect, String) {
    let kind = match (intent.subject, intent.what) {
        (_, What::ExplainSignal) => "a signal lookup",
        (Subject::Signals, _) => "a question about signals",
        (Subject::Events, What::List) => "a forensic listing of raw events",
        (Subject::Events, _) => "analytics over events",
    };
    match store {
        Store::Embedded(_) => (
            "embedded",
            Dialect::DataFusion,
            format!(
                "{kind}, answered by DataFusion over the embedded store (no ClickHouse configured)"
            ),
        ),
        Store::ClickHouse(_) | Store::Services(_) => (
            "clickhouse",
            Dialect::ClickHouse,
            format!("{kind}, answered by ClickHouse (analytics and signals live there)"),
        ),
    }
}

/// A raw-event listing from Elasticsearch (the forensics store).
async fn forensic_listing(
    es: &sentra_sinks::elasticsearch::ElasticsearchSink,
    tenant: &TenantId,
    intent: Intent,
) -> Result<Answer, AskError> {
    let query = dsl::compile(&intent);
    let store_error = |detail: &str| AskError::Store {
        engine: "elasticsearch",
        detail: detail.into(),
    };
    let docs = tokio::time::timeout(
        QUERY_TIMEOUT,
        es.list(tenant.as_str(), query.clone(), intent.limit),
    )
    .await
    .map_err(|_| store_error("no answer in time"))?
    .map_err(|e| {
        tracing::warn!(error = %e, "forensic listing failed");
        store_error(if e.is_retryable() {
            "Elasticsearch is unavailable"
        } else {
            "Elasticsearch refused the query"
        })
    })?;
    let table = Table {
        columns: dsl::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        rows: docs.iter().map(dsl::row).collect(),
    };
    let summary = summary::summarize(&intent, tenant.as_str(), std::slice::from_ref(&table));
    Ok(Answer {
        engine: "elasticsearch",
        why: "a forensic listing of raw events, answered by Elasticsearch (the forensics store; it holds \
              the security-relevant categories and every signal's evidence)"
            .into(),
        intent,
        query: vec![query.to_string()],
        columns: table.columns,
        rows: table.rows,
        summary,
    })
}

/// `ip_in_cidr(ip, cidr)`: whether a textual IP is inside a CIDR range (IPv4 or IPv6).
fn ip_in_cidr(ip: &str, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return ip == cidr;
    };
    let (Ok(ip), Ok(net), Ok(bits)) = (
        ip.parse::<std::net::IpAddr>(),
        net.parse::<std::net::IpAddr>(),
        bits.parse::<u32>(),
    ) else {
        return false;
    };
    match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn context() -> SessionContext {
    let ctx = SessionContext::new();
    let udf = create_udf(
        "ip_in_cidr",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let ips = arrays[0].as_any().downcast_ref::<StringArray>();
            let cidrs = arrays[1].as_any().downcast_ref::<StringArray>();
            let (Some(ips), Some(cidrs)) = (ips, cidrs) else {
                return Err(datafusion::error::DataFusionError::Execution(
                    "ip_in_cidr takes text".into(),
                ));
            };
            let out: BooleanArray = (0..ips.len())
                .map(|i| {
                    (!ips.is_null(i) && !cidrs.is_null(i))
                        .then(|| ip_in_cidr(ips.value(i), cidrs.value(i)))
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        }),
    );
    ctx.register_udf(udf);
    ctx
}

async fn register(
    ctx: &SessionContext,
    name: &str,
    dir: PathBuf,
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<(), String> {
    let has_parts = std::fs::read_dir(&dir)
        .map(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet")))
        })
        .unwrap_or(false);
    if has_parts {
        ctx.register_parquet(
            name,
            dir.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await
        .map_err(|e| e.to_string())
    } else {
        let empty = MemTable::try_new(schema, vec![vec![]]).map_err(|e| e.to_string())?;
        ctx.register_table(name, Arc::new(empty))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

async fn embedded(dir: &std::path::Path, tenant: &TenantId, c: &Compiled) -> Result<Table, String> {
    let ctx = context();
    // Only the caller's own partition is visible at all.
    let events_schema = {
        let full = sentra_schemas::events_schema();
        Arc::new(
            full.project(&(1..full.fields().len()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?,
        )
    };
    register(
        &ctx,
        "events",
        dir.join("events")
            .join(format!("tenant={}", tenant.as_str())),
        events_schema,
    )
    .await?;
    register(
        &ctx,
        "signals",
        dir.join("signals")
            .join(format!("tenant={}", tenant.as_str())),
        sentra_sinks::embedded::signals_schema(),
    )
    .await?;
    let params: Vec<ScalarValue> = c
        .params
        .iter()
        .map(|p| match p {
            Param::Str(s) => ScalarValue::Utf8(Some(s.clone())),
            Param::Time(us) => ScalarValue::TimestampMicrosecond(Some(*us), Some("UTC".into())),
        })
        .collect();
    let df = ctx
        .sql(&c.sql)
        .await
        .and_then(|df| {
            df.with_param_values(ParamValues::List(
                params.into_iter().map(Into::into).collect(),
            ))
        })
        .map_err(|e| {
            tracing::warn!(error = %e, sql = %c.sql, "embedded query could not be planned");
            "the query could not be planned".to_owned()
        })?;
    let schema = df.schema().clone();
    let batches = df
        .collect()
        .await
        .map_err(|e| format!("query failed: {e}"))?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    Ok(Table {
        rows: to_rows(&batches, &columns)?,
        columns,
    })
}

fn to_rows(batches: &[RecordBatch], names: &[String]) -> Result<Vec<Map<String, Value>>, String> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Map<String, Value>> =
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    // Columns that were NULL are absent in arrow's JSON; make every row carry every column.
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let mut out = Map::new();
            for n in names {
                out.insert(n.clone(), r.remove(n).unwrap_or(Value::Null));
            }
            out
        })
        .collect())
}

async fn clickhouse_rows(
    client: &clickhouse::Client,
    tenant: &TenantId,
    c: &Compiled,
) -> Result<Table, String> {
    let mut q = client
        .query(&c.sql)
        .param("tenant", tenant.as_str())
        .with_setting("output_format_json_quote_64bit_integers", "0")
        .with_setting("max_execution_time", QUERY_TIMEOUT.as_secs().to_string());
    for (i, p) in c.params.iter().enumerate() {
        let name = format!("p{}", i + 1);
        q = match p {
            Param::Str(s) => q.param(&name, s),
            Param::Time(us) => q.param(&name, us),
        };
    }
    let bytes = q
        .fetch_bytes("JSONCompactEachRowWithNames")
        .map_err(|e| e.to_string())?
        .collect()
        .await
        .map_err(|e| match e {
            // Only the error code: ClickHouse's message echoes parts of the query and the schema.
            clickhouse::error::Error::BadResponse(text) => match text.split_once("Code: ") {
                Some((_, rest)) => format!(
                    "ClickHouse error code {}",
                    rest.split('.').next().unwrap_or("?")
                ),
                None => "ClickHouse refused the query".into(),
            },
            clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
                "ClickHouse is unreachable".into()
            }
            _ => "ClickHouse failed".into(),
        })?;
    let mut lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let columns: Vec<String> = match lines.next() {
        Some(l) => serde_json::from_slice(l).map_err(|e| e.to_string())?,
        None => return Ok(Table::default()),
    };
    let mut rows = Vec::new();
    for l in lines {
        let values: Vec<Value> = serde_json::from_slice(l).map_err(|e| e.to_string())?;
        rows.push(columns.iter().cloned().zip(values).collect());
    }
    Ok(Table { columns, rows })
}
