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
            (Set(a), Set(b), _) => Set(a.union(b).cloned().collect()),
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
    evidence: Vec<String>,
}

/// Window state of one (detection, tenant, entity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct EntityState {
    panes: BTreeMap<i64, Partial>,
    /// Next window end to evaluate.
    next_end: i64,
    /// End of the last window that fired (windows overlapping it do not fire again).
    fired_until: i64,
}

type Key = (usize, String, Vec<Option<String>>);

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
    conditions: Vec<Condition>,
    /// Names of the values in a [`Partial`], in order (builtins first).
    value_names: Vec<String>,
    merges: Vec<Merge>,
    size_us: i64,
    slide_us: i64,
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
    state: HashMap<Key, EntityState>,
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
            let keys = d.group_by.join(", ");
            let mut select = vec![
                "tenant".to_owned(),
                keys.clone(),
                format!(
                    "date_bin(INTERVAL '{} seconds', timestamp, TIMESTAMP '1970-01-01T00:00:00Z') AS __pane",
                    slide_us / 1_000_000
                ),
                "array_agg(event_id) AS __evidence".to_owned(),
            ];
            let mut value_names = Vec::new();
            let mut merges = Vec::new();
            for (name, sql, merge) in BUILTIN_SQL {
                select.push(format!("{sql} AS {name}"));
                value_names.push(name.to_owned());
                merges.push(merge);
            }
            for a in &d.aggregates {
                select.push(format!("{} AS {}", a.sql, a.name));
                value_names.push(a.name.clone());
                merges.push(a.merge);
            }
            let sql = format!(
                "SELECT {} FROM events WHERE ({}) GROUP BY tenant, {keys}, __pane",
                select.join(", "),
                d.filter
            );
            let df = ctx.sql(&sql).await.map_err(plan_err)?;
            let plan = df.create_physical_plan().await.map_err(plan_err)?;
            let conditions = d
                .conditions
                .iter()
                .map(|c| parse_condition(c).unwrap_or_default())
                .collect();
            planned.push(Planned {
                detection: d,
                plan,
                conditions,
                value_names,
                merges,
                size_us,
                slide_us,
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
        let evidence = batch.column(2 + n_keys).as_list::<i32>();
        let first_value = 3 + n_keys;
        for row in 0..batch.num_rows() {
            let tenant = tenants.value(row).to_owned();
            let keys: Vec<Option<String>> = (0..n_keys)
                .map(|k| string_at(batch.column(1 + k).as_ref(), row))
                .collect();
            let values: Vec<Value> = (0..p.value_names.len())
                .map(|v| value_at(batch.column(first_value + v).as_ref(), row))
                .collect();
            let ev_list = evidence.value(row);
            let ev = ev_list.as_string::<i32>();
            let ev: Vec<String> = (0..ev.len().min(MAX_EVIDENCE))
                .map(|i| ev.value(i).to_owned())
                .collect();
            let key = (det, tenant, keys);
            if !self.state.contains_key(&key) {
                let count = self.entities_per_tenant.entry(key.1.clone()).or_default();
                if *count >= self.config.max_entities_per_tenant {
                    self.state_overflow += 1;
                    continue;
                }
                *count += 1;
            }
            let pane = panes.value(row);
            let entity = self.state.entry(key).or_insert_with(|| EntityState {
                next_end: pane + p.slide_us,
                ..EntityState::default()
            });
            // An earlier pane (out of order, within lateness) must still have its windows evaluated.
            entity.next_end = entity.next_end.min(pane + p.slide_us);
            let partial = entity.panes.entry(pane).or_insert_with(|| Partial {
                values: vec![Value::Null; values.len()],
                evidence: Vec::new(),
            });
            for ((acc, v), m) in partial.values.iter_mut().zip(&values).zip(&p.merges) {
                acc.merge(v, *m);
            }
            let room = MAX_EVIDENCE.saturating_sub(partial.evidence.len());
            partial.evidence.extend(ev.into_iter().take(room));
        }
    }

    /// Evaluates every window whose end is at or before its tenant's watermark (all windows when
    /// `everything`), fires those whose conditions hold, and drops state no future window needs.
    fn close(&mut self, everything: bool) -> Vec<Signal> {
        let mut fired: Vec<(i64, usize, Signal)> = Vec::new();
        let mut emptied = Vec::new();
        for (key, entity) in self.state.iter_mut() {
            let (det, tenant, keys) = key;
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
                let mut merged: Option<Partial> = None;
                for (_, part) in entity.panes.range(start..end) {
                    let m = merged.get_or_insert_with(|| Partial {
                        values: vec![Value::Null; part.values.len()],
                        evidence: Vec::new(),
                    });
                    for ((acc, v), how) in m.values.iter_mut().zip(&part.values).zip(&p.merges) {
                        acc.merge(v, *how);
                    }
                    let room = MAX_EVIDENCE.saturating_sub(m.evidence.len());
                    m.evidence.extend(part.evidence.iter().take(room).cloned());
                }
                if let Some(m) = merged {
                    if start >= entity.fired_until
                        && holds(&p.conditions, &p.value_names, &m.values)
                    {
                        entity.fired_until = end;
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
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.state.remove(&key);
            if let Some(c) = self.entities_per_tenant.get_mut(&key.1) {
                *c = c.saturating_sub(1);
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
        for ((det, tenant, keys), e) in &self.state {
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
                self.state
                    .insert((det, tenant.clone(), saved.keys), saved.state);
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

fn term(t: &Term, names: &[String], values: &[Value]) -> Option<f64> {
    match &t.name {
        None => Some(t.factor),
        Some(n) => {
            let i = names.iter().position(|x| x == n)?;
            Some(t.factor * values[i].num()?)
        }
    }
}

fn holds(conditions: &[Condition], names: &[String], values: &[Value]) -> bool {
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
        evidence: m.evidence.clone(),
    }
}
