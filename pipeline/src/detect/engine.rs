//! The detection engine: event batches in, signals out, in event time.
//!
//! Each detection's SQL (filter, group by tenant + entity + window pane, aggregates) is planned by DataFusion
//! once, at start; every batch then runs through the same physical plans (the plans read a table whose
//! contents are swapped per batch). Their per-pane partial results are merged into keyed window state
//! (tenant, detection, entity, pane). Per-tenant watermarks (newest event time − allowed lateness) decide
//! which windows are final: events older than their tenant's watermark are late (returned so the caller
//! quarantines them) and every window whose end the watermark passed is evaluated, once.
//!
//! Results do not depend on how the input was cut into batches: lateness is decided event by event, and a
//! window is only evaluated when no event of it can still be accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{
    DataType, Float64Type, Int64Type, SchemaRef, TimestampMicrosecondType, UInt64Type,
};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{collect, ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::{SessionConfig, SessionContext};
use sentra_schemas::{events_schema, hex_digest, Signal};
use serde::{Deserialize, Serialize};

use super::definition::{parse_condition, Condition, Detection, Merge, Op, Term};
use super::risk;

/// Evidence event ids kept per signal.
pub const MAX_EVIDENCE: usize = 10;

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How far behind its tenant's newest event an event may be and still count, seconds.
    pub allowed_lateness_secs: u64,
    /// Most open entities (keys with window state) per tenant; beyond it, new entities are not tracked
    /// and are counted as `state_overflow`, so one tenant's flood cannot exhaust memory for all.
    pub max_entities_per_tenant: usize,
    /// Tenant UTC offsets in minutes (e.g. `acme = 60`) for the off-hours modifier; default UTC.
    pub tenant_utc_offsets_min: BTreeMap<String, i32>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            allowed_lateness_secs: 30,
            max_entities_per_tenant: 100_000,
            tenant_utc_offsets_min: BTreeMap::new(),
        }
    }
}

/// Why the engine could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A detection's SQL did not plan (a user error in the definition).
    #[error("detection {name}: {source}")]
    Plan {
        /// The detection.
        name: String,
        /// DataFusion's message.
        source: datafusion::error::DataFusionError,
    },
    /// Executing a plan failed (internal).
    #[error("detection {name} failed on a batch: {source}")]
    Execute {
        /// The detection.
        name: String,
        /// DataFusion's message.
        source: datafusion::error::DataFusionError,
    },
}

/// A merged aggregate value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Absent (e.g. `min` over no rows).
    Null,
    /// Integer (counts, epoch µs).
    Int(i64),
    /// Float.
    Float(f64),
    /// Distinct strings.
    Set(BTreeSet<String>),
}

impl Value {
    /// Numeric view: sets count as their size.
    pub fn num(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Set(s) => Some(s.len() as f64),
        }
    }

    fn merge(&mut self, other: &Value, how: Merge) {
        use Value::*;
        let merged = match (&*self, other, how) {
            (_, Null, _) => return,
            (Null, o, _) => o.clone(),
            (Int(a), Int(b), Merge::Sum) => Int(a + b),
            (Int(a), Int(b), Merge::Min) => Int(*a.min(b)),
            (Int(a), Int(b), Merge::Max) => Int(*a.max(b)),
            (Set(_), Set(b), _) => {
                if let Set(a) = self {
                    a.extend(b.iter().cloned());
                }
                return;
            }
            (a, b, how) => {
                let (x, y) = (a.num().unwrap_or(0.0), b.num().unwrap_or(0.0));
                Float(match how {
                    Merge::Min => x.min(y),
                    Merge::Max => x.max(y),
                    _ => x + y,
                })
            }
        };
        *self = merged;
    }
}

/// Partial aggregates of one pane.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Partial {
    values: Vec<Value>,
    /// One sample event per combination of dimension values (host, distinct columns): the smallest event
    /// id, with the combination's first event time for ordering. Exact whatever the batching.
    /// Keyed by a stable hash of the combination; only the `EVIDENCE_KEPT` earliest combinations are kept,
    /// which is enough for the earliest [`MAX_EVIDENCE`] of any window to be exact.
    evidence: BTreeMap<u64, (i64, String)>,
}

/// Evidence combinations kept per pane.
const EVIDENCE_KEPT: usize = 4 * MAX_EVIDENCE;

/// FNV-1a over the combination's values: stable across runs and platforms (checkpoints keep it).
fn combo_hash<'a>(values: impl Iterator<Item = Option<&'a str>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.unwrap_or("\u{0}").bytes().chain([0x1f]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl Partial {
    fn new(n: usize) -> Self {
        Self {
            values: vec![Value::Null; n],
            evidence: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &Partial, merges: &[Merge]) {
        for ((acc, v), how) in self.values.iter_mut().zip(&other.values).zip(merges) {
            acc.merge(v, *how);
        }
        for (&combo, (time, id)) in &other.evidence {
            self.add_evidence(combo, *time, id);
        }
    }

    /// Adds a (first time, smallest id) candidate for a combination; both merge by minimum, so the result
    /// is the same however the events were batched.
    fn add_evidence(&mut self, combo: u64, time: i64, id: &str) {
        if let Some(have) = self.evidence.get_mut(&combo) {
            have.0 = have.0.min(time);
            if id < have.1.as_str() {
                have.1 = id.to_owned();
            }
            return;
        }
        if self.evidence.len() >= EVIDENCE_KEPT {
            // Full: keep only the earliest combinations.
            let (&latest_key, latest) = self
                .evidence
                .iter()
                .max_by(|a, b| a.1.cmp(b.1))
                .expect("non-empty");
            if (time, id) >= (latest.0, latest.1.as_str()) {
                return;
            }
            self.evidence.remove(&latest_key);
        }
        self.evidence.insert(combo, (time, id.to_owned()));
    }

    /// The first [`MAX_EVIDENCE`] samples in event order.
    fn evidence_ids(&self) -> Vec<String> {
        let mut all: Vec<&(i64, String)> = self.evidence.values().collect();
        all.sort();
        all.into_iter()
            .take(MAX_EVIDENCE)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// Window state of one (detection, tenant, entity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct EntityState {
    panes: BTreeMap<i64, Partial>,
    /// Next window end to evaluate.
    next_end: i64,
    /// Windows starting before this stay quiet (set when a window fires).
    fired_until: i64,
}

type Key = (usize, String, Vec<Option<String>>);

fn key_value(c: &arrow::array::StringArray, row: usize) -> Option<&str> {
    (!c.is_null(row)).then(|| c.value(row))
}

/// Encodes (detection, tenant, keys) as one string, so a lookup needs no allocation.
fn encode_key<'a>(
    buf: &mut String,
    det: usize,
    tenant: &str,
    keys: impl Iterator<Item = Option<&'a str>>,
) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{det}\u{1e}{tenant}");
    for k in keys {
        buf.push('\u{1f}');
        match k {
            Some(k) => buf.push_str(k),
            None => buf.push('\u{0}'),
        }
    }
}

/// One entity's identity and window state.
#[derive(Debug)]
struct Entity {
    key: Key,
    state: EntityState,
}

/// The window state of one entity, as saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedEntity {
    detection: String,
    keys: Vec<Option<String>>,
    state: EntityState,
}

/// Everything the engine must remember across batches and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    max_event_us: BTreeMap<String, i64>,
    /// Per tenant, its entities in (detection, keys) order.
    entities: BTreeMap<String, Vec<SavedEntity>>,
    /// New entities not tracked because a tenant hit `max_entities_per_tenant`.
    pub state_overflow: u64,
}

#[derive(Debug)]
struct Slot {
    schema: SchemaRef,
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self.batches.lock().map(|b| b.clone()).unwrap_or_default();
        Box::pin(
            MemoryStream::try_new(batches, self.schema.clone(), None)
                .expect("batches match the schema"),
        )
    }
}

/// A planned detection.
struct Planned {
    detection: Detection,
    plan: Arc<dyn ExecutionPlan>,
    /// Conditions over counts and times only (cheap), and those that need a distinct set's size.
    numeric_conditions: Vec<Condition>,
    set_conditions: Vec<Condition>,
    /// Names of the values in a [`Partial`], in order (builtins first).
    value_names: Vec<String>,
    merges: Vec<Merge>,
    /// Where each value comes from in the plan's output.
    sources: Vec<ValueSource>,
    /// Output columns of the grouping dimensions (for evidence samples).
    dims: Vec<usize>,
    /// Output column of `first_seen`.
    first_seen_col: usize,
    size_us: i64,
    slide_us: i64,
    repeat_after_us: i64,
}

/// How a partial value is read from a plan's output row.
#[derive(Debug, Clone, Copy)]
enum ValueSource {
    /// A native aggregate in this output column.
    Column(usize),
    /// A distinct set: the grouping dimension in column `dim`, counted only when the optional filter-count
    /// column is above zero.
    Dimension { dim: usize, filter: Option<usize> },
}

/// `array_agg(DISTINCT col)` with an optional `FILTER (WHERE cond)`: (column, condition).
pub fn parse_distinct(sql: &str) -> Option<(String, Option<String>)> {
    let rest = sql.trim().strip_prefix("array_agg(DISTINCT ")?;
    let close = rest.find(')')?;
    let col = rest[..close].trim();
    if col.is_empty() || !col.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let tail = rest[close + 1..].trim();
    if tail.is_empty() {
        return Some((col.to_owned(), None));
    }
    let cond = tail.strip_prefix("FILTER (WHERE ")?.strip_suffix(')')?;
    Some((col.to_owned(), Some(cond.to_owned())))
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Signals of windows that closed, in (window end, detection, tenant, entity) order.
    pub signals: Vec<Signal>,
    /// Rows of the input batch that were late (older than their tenant's watermark), in order.
    pub late_rows: Vec<usize>,
}

/// The engine: planned detections plus their state.
pub struct Engine {
    config: EngineConfig,
    ctx: SessionContext,
    slot: Arc<Mutex<Vec<RecordBatch>>>,
    planned: Vec<Planned>,
    /// Entities by [`encode_key`].
    state: HashMap<String, Entity>,
    max_event_us: HashMap<String, i64>,
    entities_per_tenant: HashMap<String, usize>,
    state_overflow: u64,
}

const BUILTIN_SQL: [(&str, &str, Merge); 4] = [
    ("events", "count(*)", Merge::Sum),
    ("hosts", "array_agg(DISTINCT host)", Merge::Union),
    ("first_seen", "min(timestamp)", Merge::Min),
    ("last_seen", "max(timestamp)", Merge::Max),
];

impl Engine {
    /// Plans every detection. Fails with the detection's name if its SQL does not plan.
    pub async fn new(
        detections: Vec<Detection>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let session = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(65_536);
        let ctx = SessionContext::new_with_config(session);
        let slot = Arc::new(Mutex::new(Vec::new()));
        let table = StreamingTable::try_new(
            events_schema(),
            vec![Arc::new(Slot {
                schema: events_schema(),
                batches: slot.clone(),
            })],
        )
        .map_err(|e| EngineError::Plan {
            name: "<events table>".into(),
            source: e,
        })?;
        ctx.register_table("events", Arc::new(table))
            .map_err(|e| EngineError::Plan {
                name: "<events table>".into(),
                source: e,
            })?;
        let mut planned = Vec::new();
        for d in detections {
            let plan_err = |e| EngineError::Plan {
                name: d.name.clone(),
                source: e,
            };
            let (size_us, slide_us) = d.window.size_slide_us();
            // Output columns: tenant, keys…, pane, evidence, then dimensions, native aggregates and filter counts.
            // Distinct sets are not aggregated as lists (slow, row-by-row in DataFusion) but added to the
            // GROUP BY as dimensions; the engine collects their values into sets while merging.
            let mut group_cols: Vec<String> = vec!["tenant".into()];
            group_cols.extend(d.group_by.iter().cloned());
            let mut select: Vec<String> = group_cols.clone();
            select.push(format!(
                "date_bin(INTERVAL '{} seconds', timestamp, TIMESTAMP '1970-01-01T00:00:00Z') AS __pane",
                slide_us / 1_000_000
            ));
            // The smallest id per group: a native aggregate (an ordered first_value costs several times more), and
            // exact under merging, so samples do not depend on batching.
            select.push("min(event_id) AS __evidence".into());
            let mut value_names = Vec::new();
            let mut merges = Vec::new();
            let mut sources = Vec::new();
            let mut extra_group: Vec<String> = Vec::new();
            let mut distinct = |col: &str, filter: Option<&str>, select: &mut Vec<String>| {
                let dim = select.len();
                select.push(format!("{col} AS __d{dim}"));
                if !group_cols.iter().any(|g| g == col) && !extra_group.iter().any(|g| g == col) {
                    extra_group.push(col.to_owned());
                }
                let filter = filter.map(|cond| {
                    select.push(format!(
                        "count(*) FILTER (WHERE {cond}) AS __f{}",
                        select.len()
                    ));
                    select.len() - 1
                });
                ValueSource::Dimension { dim, filter }
            };
            let builtins = BUILTIN_SQL
                .iter()
                .map(|&(name, sql, merge)| (name, sql, merge));
            let own = d
                .aggregates
                .iter()
                .map(|a| (a.name.as_str(), a.sql.as_str(), a.merge));
            for (name, sql, merge) in builtins.chain(own) {
                let source = match (merge, parse_distinct(sql)) {
                    (Merge::Union, Some((col, cond))) => {
                        distinct(&col, cond.as_deref(), &mut select)
                    }
                    _ => {
                        select.push(format!("{sql} AS {name}"));
                        ValueSource::Column(select.len() - 1)
                    }
                };
                value_names.push(name.to_owned());
                merges.push(merge);
                sources.push(source);
            }
            group_cols.push("__pane".into());
            group_cols.extend(extra_group);
            let sql = format!(
                "SELECT {} FROM events WHERE ({}) GROUP BY {}",
                select.join(", "),
                d.filter,
                group_cols.join(", ")
            );
            let df = ctx.sql(&sql).await.map_err(plan_err)?;
            let plan = df.create_physical_plan().await.map_err(plan_err)?;
            let (set_conditions, numeric_conditions): (Vec<Condition>, Vec<Condition>) = d
                .conditions
                .iter()
                .map(|c| parse_condition(c).unwrap_or_default())
                .partition(|c| {
                    c.iter().flat_map(|cmp| [&cmp.lhs, &cmp.rhs]).any(|t| {
                        t.name.as_ref().is_some_and(|n| {
                            value_names
                                .iter()
                                .position(|v| v == n)
                                .is_some_and(|i| merges[i] == Merge::Union)
                        })
                    })
                });
            let repeat_after_us = d.repeat_after_secs as i64 * 1_000_000;
            let dims = sources
                .iter()
                .filter_map(|s| match s {
                    ValueSource::Dimension { dim, .. } => Some(*dim),
                    ValueSource::Column(_) => None,
                })
                .collect();
            let first_seen_col = match sources[2] {
                ValueSource::Column(c) => c,
                ValueSource::Dimension { dim, .. } => dim,
            };
            planned.push(Planned {
                detection: d,
                plan,
                numeric_conditions,
                set_conditions,
                value_names,
                merges,
                sources,
                dims,
                first_seen_col,
                size_us,
                slide_us,
                repeat_after_us,
            });
        }
        Ok(Self {
            config,
            ctx,
            slot,
            planned,
            state: HashMap::new(),
            max_event_us: HashMap::new(),
            entities_per_tenant: HashMap::new(),
            state_overflow: 0,
        })
    }

    /// The detections, in evaluation order.
    pub fn detections(&self) -> impl Iterator<Item = &Detection> {
        self.planned.iter().map(|p| &p.detection)
    }

    /// The tenant's watermark, if it has seen events.
    pub fn watermark(&self, tenant: &str) -> Option<i64> {
        self.max_event_us
            .get(tenant)
            .map(|m| m - self.lateness_us())
    }

    fn lateness_us(&self) -> i64 {
        self.config.allowed_lateness_secs as i64 * 1_000_000
    }

    /// Runs one batch (with [`events_schema`]) through every detection and closes the windows the new
    /// watermarks passed.
    pub async fn process(&mut self, batch: &RecordBatch) -> Result<BatchOutcome, EngineError> {
        let mut out = BatchOutcome::default();
        if batch.num_rows() == 0 {
            return Ok(out);
        }
        // Lateness, event by event.
        let tenants = batch.column(0).as_string::<i32>();
        let ts = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        let lateness = self.lateness_us();
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut last: Option<(&str, i64)> = None;
        for row in 0..batch.num_rows() {
            let (t, time) = (tenants.value(row), ts.value(row));
            let max = match last {
                Some((lt, m)) if lt == t => m,
                _ => *self.max_event_us.get(t).unwrap_or(&i64::MIN),
            };
            let late = max != i64::MIN && time < max - lateness;
            keep.push(!late);
            if late {
                out.late_rows.push(row);
            } else if time > max {
                self.max_event_us.insert(t.to_owned(), time);
                last = Some((t, time));
            } else {
                last = Some((t, max));
            }
        }
        let on_time = if out.late_rows.is_empty() {
            batch.clone()
        } else {
            filter_record_batch(batch, &BooleanArray::from(keep)).expect("mask matches the batch")
        };

        *self.slot.lock().expect("slot lock") = vec![on_time];
        let task = self.ctx.task_ctx();
        for i in 0..self.planned.len() {
            let result = collect(self.planned[i].plan.clone(), task.clone())
                .await
                .map_err(|e| EngineError::Execute {
                    name: self.planned[i].detection.name.clone(),
                    source: e,
                })?;
            for part in &result {
                self.merge_partials(i, part);
            }
        }
        self.slot.lock().expect("slot lock").clear();
        out.signals = self.close(false);
        Ok(out)
    }

    /// Closes every open window (end of input): the watermark moves past all events.
    pub fn finish(&mut self) -> Vec<Signal> {
        self.close(true)
    }

    fn merge_partials(&mut self, det: usize, batch: &RecordBatch) {
        let p = &self.planned[det];
        let n_keys = p.detection.group_by.len();
        let tenants = batch.column(0).as_string::<i32>();
        let panes = to_micros(batch.column(1 + n_keys).as_ref());
        let panes = panes.as_primitive::<TimestampMicrosecondType>();
        let evidence = batch.column(2 + n_keys).as_string::<i32>();
        // Timestamps in one unit, cast once per batch rather than per value.
        let columns: Vec<arrow::array::ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(_, _) => to_micros(c.as_ref()),
                _ => c.clone(),
            })
            .collect();
        let key_cols: Vec<&arrow::array::StringArray> = (0..n_keys)
            .map(|k| batch.column(1 + k).as_string::<i32>())
            .collect();
        let mut buf = String::new();
        for row in 0..batch.num_rows() {
            let tenant = tenants.value(row);
            encode_key(
                &mut buf,
                det,
                tenant,
                key_cols.iter().map(|c| key_value(c, row)),
            );
            let pane = panes.value(row);
            if !self.state.contains_key(buf.as_str()) {
                let count = self
                    .entities_per_tenant
                    .entry(tenant.to_owned())
                    .or_default();
                if *count >= self.config.max_entities_per_tenant {
                    self.state_overflow += 1;
                    continue;
                }
                *count += 1;
                let keys = key_cols
                    .iter()
                    .map(|c| key_value(c, row).map(str::to_owned))
                    .collect();
                let state = EntityState {
                    next_end: pane + p.slide_us,
                    ..EntityState::default()
                };
                self.state.insert(
                    buf.clone(),
                    Entity {
                        key: (det, tenant.to_owned(), keys),
                        state,
                    },
                );
            }
            let entity = &mut self
                .state
                .get_mut(buf.as_str())
                .expect("inserted above")
                .state;
            // An earlier pane (out of order, within lateness) must still have its windows evaluated.
            entity.next_end = entity.next_end.min(pane + p.slide_us);
            let partial = entity
                .panes
                .entry(pane)
                .or_insert_with(|| Partial::new(p.sources.len()));
            for ((acc, source), m) in partial.values.iter_mut().zip(&p.sources).zip(&p.merges) {
                match *source {
                    ValueSource::Column(c) => acc.merge(&value_at(columns[c].as_ref(), row), *m),
                    ValueSource::Dimension { dim, filter } => {
                        let counted = filter.is_none_or(|f| {
                            value_at(columns[f].as_ref(), row).num().unwrap_or(0.0) > 0.0
                        });
                        let col = columns[dim].as_string::<i32>();
                        if counted && !col.is_null(row) {
                            let v = col.value(row);
                            match acc {
                                Value::Set(set) => {
                                    if !set.contains(v) {
                                        set.insert(v.to_owned());
                                    }
                                }
                                other => *other = Value::Set(BTreeSet::from([v.to_owned()])),
                            }
                        }
                    }
                }
            }
            if !evidence.is_null(row) {
                let combo = combo_hash(p.dims.iter().map(|&d| {
                    let c = columns[d].as_string::<i32>();
                    (!c.is_null(row)).then(|| c.value(row))
                }));
                let first_seen = match value_at(columns[p.first_seen_col].as_ref(), row) {
                    Value::Int(t) => t,
                    _ => i64::MIN,
                };
                partial.add_evidence(combo, first_seen, evidence.value(row));
            }
        }
    }

    /// Evaluates every window whose end is at or before its tenant's watermark (all windows when
    /// `everything`), fires those whose conditions hold, and drops state no future window needs.
    fn close(&mut self, everything: bool) -> Vec<Signal> {
        let mut fired: Vec<(i64, usize, Signal)> = Vec::new();
        let mut emptied = Vec::new();
        for (encoded, Entity { key, state: entity }) in self.state.iter_mut() {
            let (det, tenant, keys) = &*key;
            let p = &self.planned[*det];
            let wm = if everything {
                i64::MAX
            } else {
                match self.max_event_us.get(tenant) {
                    Some(m) => m - self.config.allowed_lateness_secs as i64 * 1_000_000,
                    None => continue,
                }
            };
            while let Some((&first, _)) = entity.panes.first_key_value() {
                // Skip empty stretches: the first window that can contain the first pane ends at first + slide.
                if entity.next_end <= first {
                    entity.next_end = first + p.slide_us;
                }
                let end = entity.next_end;
                if end > wm {
                    break;
                }
                let start = end - p.size_us;
                let in_window = || entity.panes.range(start..end).map(|(_, part)| part);
                // Quiet windows (within an episode that already fired) are not evaluated at all; the others
                // are checked on borrowed values first and merged for real only when they fire.
                // Conditions on counts and times are checked first; distinct sets are only unioned when
                // those pass and a condition needs them.
                let fires = start >= entity.fired_until && in_window().next().is_some() && {
                    let nums = window_numbers(in_window(), &p.merges, false);
                    holds(&p.numeric_conditions, &p.value_names, &nums)
                        && (p.set_conditions.is_empty()
                            || holds(
                                &p.set_conditions,
                                &p.value_names,
                                &window_numbers(in_window(), &p.merges, true),
                            ))
                };
                if fires {
                    let mut m = Partial::new(p.sources.len());
                    for part in in_window() {
                        m.merge(part, &p.merges);
                    }
                    {
                        // One signal per episode: overlapping windows, and windows starting within
                        // `repeat_after_secs` of this one, stay quiet.
                        entity.fired_until = end.max(start + p.repeat_after_us);
                        let offset = self
                            .config
                            .tenant_utc_offsets_min
                            .get(tenant)
                            .copied()
                            .unwrap_or(0);
                        let signal = build_signal(p, tenant, keys, start, end, &m, offset);
                        fired.push((end, *det, signal));
                    }
                }
                entity.next_end = end + p.slide_us;
                // Panes whose every window has now been evaluated are done.
                let done_before = entity.next_end - p.size_us;
                while entity
                    .panes
                    .first_key_value()
                    .is_some_and(|(&s, _)| s < done_before)
                {
                    entity.panes.pop_first();
                }
            }
            if entity.panes.is_empty() && entity.fired_until.saturating_add(p.size_us) <= wm {
                emptied.push(encoded.clone());
            }
        }
        for encoded in emptied {
            if let Some(e) = self.state.remove(&encoded) {
                if let Some(c) = self.entities_per_tenant.get_mut(&e.key.1) {
                    *c = c.saturating_sub(1);
                }
            }
        }
        fired.sort_by(|a, b| {
            (
                a.0,
                &self.planned[a.1].detection.name,
                a.2.tenant.as_str(),
                &a.2.id,
            )
                .cmp(&(
                    b.0,
                    &self.planned[b.1].detection.name,
                    b.2.tenant.as_str(),
                    &b.2.id,
                ))
        });
        fired.into_iter().map(|(_, _, s)| s).collect()
    }

    /// The engine's state, for checkpoints.
    pub fn snapshot(&self) -> EngineState {
        let mut entities: BTreeMap<String, Vec<SavedEntity>> = BTreeMap::new();
        for Entity {
            key: (det, tenant, keys),
            state: e,
        } in self.state.values()
        {
            entities
                .entry(tenant.clone())
                .or_default()
                .push(SavedEntity {
                    detection: self.planned[*det].detection.name.clone(),
                    keys: keys.clone(),
                    state: e.clone(),
                });
        }
        for v in entities.values_mut() {
            v.sort_by(|a, b| (&a.detection, &a.keys).cmp(&(&b.detection, &b.keys)));
        }
        EngineState {
            max_event_us: self
                .max_event_us
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            entities,
            state_overflow: self.state_overflow,
        }
    }

    /// Restores a snapshot. State of detections that no longer exist is dropped.
    pub fn restore(&mut self, s: EngineState) {
        self.max_event_us = s.max_event_us.into_iter().collect();
        self.state.clear();
        self.entities_per_tenant.clear();
        for (tenant, list) in s.entities {
            for saved in list {
                let Some(det) = self
                    .planned
                    .iter()
                    .position(|p| p.detection.name == saved.detection)
                else {
                    continue;
                };
                *self.entities_per_tenant.entry(tenant.clone()).or_default() += 1;
                let mut encoded = String::new();
                encode_key(
                    &mut encoded,
                    det,
                    &tenant,
                    saved.keys.iter().map(Option::as_deref),
                );
                let key = (det, tenant.clone(), saved.keys);
                self.state.insert(
                    encoded,
                    Entity {
                        key,
                        state: saved.state,
                    },
                );
            }
        }
        self.state_overflow = s.state_overflow;
    }

    /// New entities not tracked because a tenant hit `max_entities_per_tenant`.
    pub fn state_overflow(&self) -> u64 {
        self.state_overflow
    }
}

/// A timestamp column in microseconds, whatever unit DataFusion produced.
fn to_micros(col: &dyn Array) -> arrow::array::ArrayRef {
    let target = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
    arrow::compute::cast(col, &target).expect("timestamps cast to microseconds")
}

fn string_at(col: &dyn Array, row: usize) -> Option<String> {
    if col.is_null(row) {
        return None;
    }
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(row).to_owned()),
        DataType::Utf8View => Some(col.as_string_view().value(row).to_owned()),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(row).to_owned()),
        _ => arrow::util::display::array_value_to_string(col, row).ok(),
    }
}

fn value_at(col: &dyn Array, row: usize) -> Value {
    if col.is_null(row) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Int64 => Value::Int(col.as_primitive::<Int64Type>().value(row)),
        DataType::UInt64 => Value::Int(col.as_primitive::<UInt64Type>().value(row) as i64),
        DataType::Float64 => Value::Float(col.as_primitive::<Float64Type>().value(row)),
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _) => {
            Value::Int(col.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Timestamp(_, _) => Value::Int(
            to_micros(&col.slice(row, 1))
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
        ),
        DataType::List(_) => {
            let list = col.as_list::<i32>().value(row);
            Value::Set(
                (0..list.len())
                    .filter_map(|i| string_at(list.as_ref(), i))
                    .collect(),
            )
        }
        _ => match arrow::compute::cast(&col.slice(row, 1), &DataType::Float64) {
            Ok(a) if !a.is_null(0) => Value::Float(a.as_primitive::<Float64Type>().value(0)),
            _ => Value::Null,
        },
    }
}

/// The numeric view of a window's merged values (sets as their distinct size), without copying any string.
fn window_numbers<'a>(
    panes: impl Iterator<Item = &'a Partial>,
    merges: &[Merge],
    with_sets: bool,
) -> Vec<Option<f64>> {
    let mut nums: Vec<Option<f64>> = vec![None; merges.len()];
    let mut sets: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); merges.len()];
    for part in panes {
        for (i, v) in part.values.iter().enumerate() {
            match v {
                Value::Null => {}
                Value::Set(s) if with_sets => sets[i].extend(s.iter().map(String::as_str)),
                Value::Set(_) => {}
                other => {
                    let x = other.num().unwrap_or(0.0);
                    nums[i] = Some(match (nums[i], merges[i]) {
                        (None, _) => x,
                        (Some(a), Merge::Min) => a.min(x),
                        (Some(a), Merge::Max) => a.max(x),
                        (Some(a), _) => a + x,
                    });
                }
            }
        }
    }
    for (i, m) in merges.iter().enumerate() {
        if with_sets && *m == Merge::Union && nums[i].is_none() {
            nums[i] = Some(sets[i].len() as f64);
        }
    }
    nums
}

fn term(t: &Term, names: &[String], values: &[Option<f64>]) -> Option<f64> {
    match &t.name {
        None => Some(t.factor),
        Some(n) => {
            let i = names.iter().position(|x| x == n)?;
            Some(t.factor * values[i]?)
        }
    }
}

fn holds(conditions: &[Condition], names: &[String], values: &[Option<f64>]) -> bool {
    conditions.iter().all(|alts| {
        alts.iter().any(
            |c| match (term(&c.lhs, names, values), term(&c.rhs, names, values)) {
                (Some(l), Some(r)) => match c.op {
                    Op::Ge => l >= r,
                    Op::Gt => l > r,
                    Op::Le => l <= r,
                    Op::Lt => l < r,
                    Op::Eq => l == r,
                    Op::Ne => l != r,
                },
                _ => false,
            },
        )
    })
}

fn build_signal(
    p: &Planned,
    tenant: &str,
    keys: &[Option<String>],
    start: i64,
    end: i64,
    m: &Partial,
    utc_offset_min: i32,
) -> Signal {
    let d = &p.detection;
    let mut id_parts: Vec<&[u8]> = vec![tenant.as_bytes(), d.name.as_bytes()];
    let key_text: Vec<String> = keys.iter().map(|k| k.clone().unwrap_or_default()).collect();
    for k in &key_text {
        id_parts.push(k.as_bytes());
    }
    let start_bytes = start.to_le_bytes();
    id_parts.push(&start_bytes);
    let id = hex_digest(&id_parts, 12);
    let named: BTreeMap<&str, &Value> = p
        .value_names
        .iter()
        .map(String::as_str)
        .zip(&m.values)
        .collect();
    let key_of = |col: &str| {
        d.group_by
            .iter()
            .position(|g| g == col)
            .and_then(|i| keys[i].clone())
    };
    let single = |agg: &str| match named.get(agg) {
        Some(Value::Set(s)) if s.len() == 1 => s.iter().next().cloned(),
        _ => None,
    };
    let user = key_of("user_name")
        .or_else(|| key_of("target_user"))
        .or_else(|| single("users"))
        .or_else(|| single("targets"));
    let ip = key_of("source_ip").or_else(|| single("ips"));
    let hosts: Vec<String> = match named.get("hosts") {
        Some(Value::Set(s)) => s.iter().cloned().collect(),
        _ => Vec::new(),
    };
    let count = named.get("events").and_then(|v| v.num()).unwrap_or(0.0) as u64;
    let ctx = risk::Context {
        detection: d,
        values: &named,
        keys: &d.group_by,
        key_values: keys,
        utc_offset_min,
    };
    let (risk_score, factors) = risk::score(&ctx);
    let render = |t: &str| risk::render(t, &ctx, tenant, start, end);
    Signal {
        id,
        signal: d.name.clone(),
        tenant: sentra_schemas::TenantId::new(tenant)
            .unwrap_or_else(|_| sentra_schemas::TenantId::new("invalid").expect("literal")),
        hosts,
        user,
        ip,
        window_start: start,
        window_end: end,
        count,
        risk_score,
        severity: sentra_schemas::Severity::from_risk(risk_score),
        risk_factors: factors,
        mitre: d.mitre.clone(),
        compliance: d.compliance.clone(),
        intent: d.intent.clone(),
        narrative: render(&d.narrative),
        recommendation: render(&d.recommendation),
        evidence: m.evidence_ids(),
        suppressed: false,
        override_applied: None,
    }
}
