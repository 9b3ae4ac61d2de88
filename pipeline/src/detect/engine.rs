//! The detection engine: event batches in, signals out, in event time.
//!
//! Each detection's SQL (filter, group by tenant + entity + window pane, aggregates) is planned by DataFusion
//! once, at start; every batch then runs through the same physical plans (the plans read a table whose
//! contents are swapped per batch). Detections with the same keys and pane length share one plan when one's
//! filter is the other's, or the other's plus more conditions (see `sharing`).
//! The per-pane partial results are merged into keyed window state (tenant, detection, entity, pane).
//! Per-tenant watermarks (the slowest of the tenant's hosts in step, minus the allowed lateness; see `clock`)
//! decide which windows are final: events older than their tenant's watermark are late (returned so the
//! caller quarantines them) and every window whose end the watermark passed is evaluated, once.
//!
//! Results do not depend on how the input was cut into batches: lateness is decided event by event, and a
//! window is only evaluated when no event of it can still be accepted.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{
    DataType, Float64Type, Int64Type, SchemaRef, TimestampMicrosecondType, UInt32Type, UInt64Type,
};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{collect, ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::Expr;
use sentra_schemas::{hex_digest, Signal};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::aggregates::{self, to_micros, SharedOutbox};
use super::clock::{Clocks, TenantClock};
use super::definition::{parse_condition, Detection, Merge, Op, Term};
use super::predicates::over_twins;
use super::risk;
use super::sharing::{all_of, plan_groups, restrict, shape, PlanGroup};
use super::shed::{degraded_signal, Shed, ShedTotals, Shedding};
use super::state::{
    compact, merge_window, Entity, EntityKey, FastMap, Interner, Num, SavedEntity, Scratch, Sym,
    MAX_KEYS, NONE,
};
pub use super::state::{Value, MAX_EVIDENCE};
use super::table::{hash_column, pane_column, sym_column, Table, ROW};
use crate::normalize::zones::{offset_minutes, Zones};

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How far behind the newest event of its tenant's slowest host in step an event may be and still
    /// count, seconds.
    pub allowed_lateness_secs: u64,
    /// How far apart the clocks of one tenant's hosts may run, seconds: hosts within this of the tenant's
    /// newest event hold its watermark together, the slowest setting it; a host further behind stops holding
    /// it (see `clock`).
    pub max_clock_skew_secs: u64,
    /// Most open entities (keys with window state) each detection holds per tenant; beyond it the least
    /// active are dropped, counted and reported (see `shed`), so a flood of distinct values costs one
    /// detection of one tenant its least active state and cannot exhaust memory for all.
    #[serde(alias = "max_entities_per_tenant")]
    pub max_entities_per_detection: usize,
    /// Tenant UTC offsets in minutes (e.g. `acme = 60`) for the off-hours modifier, for tenants without a
    /// time zone in `tenant_timezones`.
    pub tenant_utc_offsets_min: BTreeMap<String, i32>,
    /// The off-hours modifier's time zone (IANA name) for tenants in neither map; default UTC.
    pub timezone: String,
    /// Each tenant's time zone (IANA name) for the off-hours modifier, daylight saving time included.
    pub tenant_timezones: BTreeMap<String, String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            allowed_lateness_secs: 30,
            max_clock_skew_secs: 300,
            max_entities_per_detection: 50_000,
            tenant_utc_offsets_min: BTreeMap::new(),
            timezone: "UTC".into(),
            tenant_timezones: BTreeMap::new(),
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
    /// A time zone name is not one of the IANA database.
    #[error("{0}")]
    TimeZone(String),
    /// Executing a plan failed (internal).
    #[error("detection {name} failed on a batch: {source}")]
    Execute {
        /// The detection, or the comma-separated detections sharing the plan.
        name: String,
        /// DataFusion's message.
        source: datafusion::error::DataFusionError,
    },
}

/// Everything the engine must remember across batches and restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Each tenant's clock.
    #[serde(default)]
    clocks: BTreeMap<String, TenantClock>,
    /// Each tenant's newest event time, as checkpoints before per-host clocks kept it (read, not written).
    #[serde(default, skip_serializing)]
    max_event_us: BTreeMap<String, i64>,
    /// Per tenant, its entities in (detection, keys) order.
    entities: BTreeMap<String, Vec<SavedEntity>>,
    /// Entities dropped because their detection held `max_entities_per_detection` for their tenant (in a
    /// checkpoint without `shed`, new entities a tenant's single limit refused).
    pub state_overflow: u64,
    /// Of those, per tenant and detection.
    #[serde(default)]
    shed: ShedTotals,
    /// Shedding not yet reported by a `detection_degraded` signal.
    #[serde(default)]
    shedding: Vec<Shed>,
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

/// A physical plan and the detections it serves (same keys and pane length), in merge order.
struct SharedPlan {
    plan: Arc<dyn ExecutionPlan>,
    members: Vec<usize>,
}

/// Where a detection's values are in the output of the plan it shares.
struct Layout {
    /// Names of the values of a pane, in order (builtins first).
    value_names: Vec<String>,
    merges: Vec<Merge>,
    /// Where each value comes from in the plan's output.
    sources: Vec<ValueSource>,
    /// Output column of the samples' outbox index, and whether this detection takes the samples (the last
    /// one to read them) or copies them.
    evidence: (usize, bool),
    /// For a detection whose filter adds conditions to its plan's: the output column of its event count. A
    /// group none of whose rows passed those conditions is not this detection's, and is skipped.
    rows: Option<usize>,
}

/// A planned detection.
struct Planned {
    detection: Detection,
    /// Conditions over counts and times only (cheap), and those that need a distinct set's size…
    numeric_rules: Vec<Rule>,
    set_rules: Vec<Rule>,
    /// …and the values each kind reads.
    numeric_needs: Vec<usize>,
    set_needs: Vec<usize>,
    /// Its values and where they are in the plan's output.
    layout: Layout,
    size_us: i64,
    slide_us: i64,
    repeat_after_us: i64,
}

impl Planned {
    /// `d` reading its values as `layout` says.
    fn new(d: Detection, layout: Layout) -> Self {
        let (value_names, merges) = (&layout.value_names, &layout.merges);
        let rules = d.conditions.iter().map(|c| {
            let rule = parse_condition(c).unwrap_or_default();
            rule.iter()
                .map(|c| Check {
                    lhs: Operand::resolve(&c.lhs, value_names),
                    op: c.op,
                    rhs: Operand::resolve(&c.rhs, value_names),
                })
                .collect::<Rule>()
        });
        let (set_rules, numeric_rules): (Vec<Rule>, Vec<Rule>) = rules.partition(|r| {
            r.iter()
                .flat_map(Check::values)
                .any(|i| merges[i] == Merge::Union)
        });
        let needs = |rules: &[Rule]| {
            let mut v: Vec<usize> = rules.iter().flatten().flat_map(Check::values).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (numeric_needs, set_needs) = (needs(&numeric_rules), needs(&set_rules));
        let (size_us, slide_us) = d.window.size_slide_us();
        let repeat_after_us = d.repeat_after_secs as i64 * 1_000_000;
        Self {
            detection: d,
            numeric_rules,
            set_rules,
            numeric_needs,
            set_needs,
            layout,
            size_us,
            slide_us,
            repeat_after_us,
        }
    }
}

/// Plans the detections of `group` (same keys and pane length) as one query: output columns are tenant,
/// keys…, pane, then each distinct value expression once. Distinct sets and samples are Sentra's own
/// aggregates (see `aggregates`); the rest is the detections' SQL as written, restricted by `FILTER` to a
/// member's extra conditions.
async fn plan_shared(
    ctx: &SessionContext,
    detections: &[Detection],
    group: &PlanGroup,
    strings: &mut Interner,
) -> datafusion::error::Result<(Arc<dyn ExecutionPlan>, Vec<Layout>)> {
    let first = &detections[group.members[0].0];
    let mut group_cols: Vec<String> = vec![sym_column("tenant")];
    group_cols.extend(first.group_by.iter().map(|c| sym_column(c)));
    group_cols.push(pane_column(first.window.size_slide_us().1));
    // Each value expression once, told apart by shape: DataFusion computes same-shaped aggregates once, and
    // an outbox entry read through two columns would be taken by one reader and missing for the other.
    let mut exprs: Vec<(String, Option<Expr>)> = Vec::new();
    let mut column = |expr: String| {
        let expr = over_twins(&expr, strings);
        let expr_shape = shape(&expr);
        let at = exprs
            .iter()
            .position(|(e, s)| *e == expr || (expr_shape.is_some() && *s == expr_shape))
            .unwrap_or_else(|| {
                exprs.push((expr, expr_shape));
                exprs.len() - 1
            });
        group_cols.len() + at
    };
    let mut layouts = Vec::new();
    for (m, extra) in &group.members {
        let d = &detections[*m];
        let extra = (!extra.is_empty()).then(|| all_of(extra));
        // Every aggregate of a member with extra conditions takes them as (or into) its `FILTER`.
        let narrowed = |name: &str, sql: String| match &extra {
            None => Ok(sql),
            Some(e) => restrict(&sql, e).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!(
                    "{name} ({sql}) is not a single aggregate, so it cannot share a plan"
                ))
            }),
        };
        let (mut value_names, mut merges, mut sources) = (Vec::new(), Vec::new(), Vec::new());
        // Samples are kept per combination of the distinct sets' columns.
        let mut sample_dims = String::new();
        for (name, sql, merge) in values(d) {
            let source = match (merge, parse_distinct(sql)) {
                (Merge::Union, Some((col, cond))) => {
                    let filter = cond.map_or(String::new(), |c| format!(" FILTER (WHERE {c})"));
                    sample_dims.push_str(&format!(", {}", hash_column(&col)));
                    let set = format!("sentra_set({}){filter}", sym_column(&col));
                    ValueSource::Set(column(narrowed(name, set)?), true)
                }
                _ => ValueSource::Column(column(narrowed(name, sql.trim().to_owned())?)),
            };
            value_names.push(name.to_owned());
            merges.push(merge);
            sources.push(source);
        }
        let evidence = format!("sentra_evidence({ROW}, timestamp{sample_dims})");
        let evidence = column(narrowed("samples", evidence)?);
        // The builtin event count comes first.
        let rows = match (&extra, sources.first()) {
            (Some(_), Some(&ValueSource::Column(c))) => Some(c),
            _ => None,
        };
        layouts.push(Layout {
            value_names,
            merges,
            sources,
            evidence: (evidence, true),
            rows,
        });
    }
    // Outbox entries are moved out by the last member reading them and copied by the others.
    let mut taken = std::collections::HashSet::new();
    for layout in layouts.iter_mut().rev() {
        for source in &mut layout.sources {
            if let ValueSource::Set(c, takes) = source {
                *takes = taken.insert(*c);
            }
        }
        layout.evidence.1 = taken.insert(layout.evidence.0);
    }
    let select: Vec<String> = group_cols
        .iter()
        .cloned()
        .chain(
            exprs
                .iter()
                .enumerate()
                .map(|(i, (e, _))| format!("{e} AS __v{i}")),
        )
        .collect();
    let sql = format!(
        "SELECT {} FROM events WHERE ({}) GROUP BY {}",
        select.join(", "),
        over_twins(&group.filter, strings),
        group_cols.join(", ")
    );
    let plan = ctx.sql(&sql).await?.create_physical_plan().await?;
    Ok((plan, layouts))
}

/// How a pane value is read from a plan's output row.
#[derive(Debug, Clone, Copy)]
enum ValueSource {
    /// A native aggregate in this output column.
    Column(usize),
    /// A distinct set (`sentra_set`): its outbox index is in this output column; whether this detection takes
    /// the set (the last one to read it) or copies it.
    Set(usize, bool),
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
    /// `config`'s time zones, looked up.
    zones: Zones,
    ctx: SessionContext,
    table: Table,
    slot: Arc<Mutex<Vec<RecordBatch>>>,
    /// The physical plans, each serving one or more detections.
    plans: Vec<SharedPlan>,
    planned: Vec<Planned>,
    /// Window state by (detection, tenant, entity).
    state: FastMap<EntityKey, Entity>,
    /// The strings `state` (and each batch's interned columns) refer to.
    strings: Interner,
    /// Where the pane aggregates put their groups' sets and samples.
    outbox: SharedOutbox,
    /// Compact `strings` when it grows past this…
    interned_limit: usize,
    /// …which is never below this.
    min_interned_limit: usize,
    scratch: Scratch,
    clocks: Clocks,
    /// Per tenant, the entities each detection holds.
    held: FastMap<String, Vec<usize>>,
    /// (tenant, detection) holding more than their limit since the last shedding.
    crowded: Vec<(Sym, u32)>,
    /// Counts merges: an entity's `touched` is the count at its latest.
    touches: u64,
    shedding: Shedding,
    state_overflow: u64,
}

const BUILTIN_SQL: [(&str, &str, Merge); 4] = [
    ("events", "count(*)", Merge::Sum),
    ("hosts", "array_agg(DISTINCT host)", Merge::Union),
    ("first_seen", "min(timestamp)", Merge::Min),
    ("last_seen", "max(timestamp)", Merge::Max),
];

/// A detection's values as (name, SQL, merge): the builtins, then its own aggregates.
pub(super) fn values(d: &Detection) -> impl Iterator<Item = (&str, &str, Merge)> {
    let builtins = BUILTIN_SQL.iter().copied();
    let own = d
        .aggregates
        .iter()
        .map(|a| (a.name.as_str(), a.sql.as_str(), a.merge));
    builtins.chain(own)
}

impl Engine {
    /// Plans every detection. Fails with the detection's name if its SQL does not plan.
    pub async fn new(
        detections: Vec<Detection>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let zones = Zones::new(&config.timezone, &config.tenant_timezones)
            .map_err(EngineError::TimeZone)?;
        let session = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(65_536);
        let ctx = SessionContext::new_with_config(session);
        let outbox = SharedOutbox::default();
        for f in aggregates::functions(&outbox) {
            ctx.register_udaf(f);
        }
        let slot = Arc::new(Mutex::new(Vec::new()));
        let table = Table::for_detections(&detections);
        let streaming = StreamingTable::try_new(
            table.schema.clone(),
            vec![Arc::new(Slot {
                schema: table.schema.clone(),
                batches: slot.clone(),
            })],
        )
        .map_err(|e| EngineError::Plan {
            name: "<events table>".into(),
            source: e,
        })?;
        ctx.register_table("events", Arc::new(streaming))
            .map_err(|e| EngineError::Plan {
                name: "<events table>".into(),
                source: e,
            })?;
        for d in &detections {
            if d.group_by.len() > MAX_KEYS {
                return Err(EngineError::Plan {
                    name: d.name.clone(),
                    source: datafusion::error::DataFusionError::Plan(format!(
                        "group_by has {} columns; at most {MAX_KEYS} are supported",
                        d.group_by.len()
                    )),
                });
            }
        }
        // Detections share a plan where one's filter is another's, or narrows it (see `sharing`); the plan
        // computes the union of their values: the filter, the grouping and any value they have in common are
        // computed once.
        let mut groups = plan_groups(&detections);
        // Plans compare text columns with literals as numbers, pinned in the interner first.
        let mut strings = Interner::default();
        let mut plans = Vec::new();
        let mut layouts: Vec<Option<Layout>> = detections.iter().map(|_| None).collect();
        while let Some(group) = groups.pop() {
            let members: Vec<usize> = group.members.iter().map(|m| m.0).collect();
            match plan_shared(&ctx, &detections, &group, &mut strings).await {
                Ok((plan, member_layouts)) => {
                    for (&m, layout) in members.iter().zip(member_layouts) {
                        layouts[m] = Some(layout);
                    }
                    plans.push(SharedPlan { plan, members });
                }
                // Planned apart, the error names the detection whose SQL is wrong.
                Err(_) if members.len() > 1 => {
                    groups.extend(members.iter().map(|&m| PlanGroup::alone(m, &detections)))
                }
                Err(e) => {
                    return Err(EngineError::Plan {
                        name: detections[members[0]].name.clone(),
                        source: e,
                    })
                }
            }
        }
        plans.sort_by_key(|p| p.members[0]);
        let planned = detections
            .into_iter()
            .zip(layouts)
            .map(|(d, layout)| Planned::new(d, layout.expect("every detection is planned")))
            .collect();
        Ok(Self {
            clocks: Clocks::new(
                config.allowed_lateness_secs as i64 * 1_000_000,
                config.max_clock_skew_secs as i64 * 1_000_000,
            ),
            zones,
            config,
            ctx,
            table,
            slot,
            plans,
            planned,
            state: FastMap::default(),
            strings,
            outbox,
            interned_limit: MIN_INTERNED_LIMIT,
            min_interned_limit: MIN_INTERNED_LIMIT,
            scratch: Scratch::default(),
            held: FastMap::default(),
            crowded: Vec::new(),
            touches: 0,
            shedding: Shedding::default(),
            state_overflow: 0,
        })
    }

    /// How many physical plans the detections run as (fewer than detections when some share one).
    #[cfg(test)]
    pub(super) fn plan_count(&self) -> usize {
        self.plans.len()
    }

    /// The detections, in evaluation order.
    pub fn detections(&self) -> impl Iterator<Item = &Detection> {
        self.planned.iter().map(|p| &p.detection)
    }

    /// The tenant's watermark, if it has seen events.
    pub fn watermark(&self, tenant: &str) -> Option<i64> {
        self.clocks.watermark(tenant)
    }

    /// Runs one batch (with [`events_schema`]) through every detection, on event time alone (replayed
    /// files), and closes the windows the new watermarks passed.
    pub async fn process(&mut self, batch: &RecordBatch) -> Result<BatchOutcome, EngineError> {
        self.process_read(batch, None).await
    }

    /// [`Engine::process`] for live input, each event read at `read_us[row]` (epoch µs, the reader's clock):
    /// no watermark passes the reader's clock less the allowed lateness.
    pub async fn process_live(
        &mut self,
        batch: &RecordBatch,
        read_us: &[i64],
    ) -> Result<BatchOutcome, EngineError> {
        assert_eq!(read_us.len(), batch.num_rows(), "one read time per event");
        self.process_read(batch, Some(read_us)).await
    }

    async fn process_read(
        &mut self,
        batch: &RecordBatch,
        read_us: Option<&[i64]>,
    ) -> Result<BatchOutcome, EngineError> {
        let mut out = BatchOutcome::default();
        if batch.num_rows() == 0 {
            return Ok(out);
        }
        let table = self.table.batch(batch, &mut self.strings);
        let tenants = table
            .column(self.table.tenant_twin())
            .as_primitive::<UInt32Type>();
        let hosts = table
            .column(self.table.host_twin())
            .as_primitive::<UInt32Type>();
        let times = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        let keep = self.clocks.observe(
            &self.strings,
            (tenants.values(), hosts.values()),
            times.values(),
            read_us,
            &mut out.late_rows,
        );
        let on_time = if out.late_rows.is_empty() {
            table
        } else {
            filter_record_batch(&table, &keep).expect("mask matches the batch")
        };

        *self.slot.lock().expect("slot lock") = vec![on_time];
        self.outbox.lock().expect("outbox lock").ids = Some(
            batch
                .column_by_name("event_id")
                .expect("events have an id")
                .as_string_view()
                .clone(),
        );
        let task = self.ctx.task_ctx();
        for i in 0..self.plans.len() {
            let result = collect(self.plans[i].plan.clone(), task.clone())
                .await
                .map_err(|e| EngineError::Execute {
                    name: self.plans[i]
                        .members
                        .iter()
                        .map(|&m| self.planned[m].detection.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    source: e,
                })?;
            for part in &result {
                for m in 0..self.plans[i].members.len() {
                    self.merge_partials(self.plans[i].members[m], part);
                }
            }
            let mut outbox = self.outbox.lock().expect("outbox lock");
            outbox.sets.clear();
            outbox.evidence.clear();
        }
        self.slot.lock().expect("slot lock").clear();
        self.outbox.lock().expect("outbox lock").ids = None;
        self.shed_least_active();
        out.signals = self.close(false);
        Ok(out)
    }

    /// Closes every open window (end of input): the watermark moves past all events.
    pub fn finish(&mut self) -> Vec<Signal> {
        self.close(true)
    }

    fn merge_partials(&mut self, det: usize, batch: &RecordBatch) {
        let Self {
            config,
            planned,
            state,
            strings,
            outbox,
            held,
            crowded,
            touches,
            ..
        } = self;
        let p = &planned[det];
        let n_keys = p.detection.group_by.len();
        let syms = |c: usize| batch.column(c).as_primitive::<UInt32Type>();
        let tenants = syms(0);
        let key_cols: Vec<&UInt32Array> = (0..n_keys).map(|k| syms(1 + k)).collect();
        let panes = batch.column(1 + n_keys).as_primitive::<Int64Type>();
        let outbox_index = |c: usize| batch.column(c).as_primitive::<UInt64Type>();
        let evidence = outbox_index(p.layout.evidence.0);
        let rows = p
            .layout
            .rows
            .map(|c| batch.column(c).as_primitive::<Int64Type>());
        let numbers: Vec<Option<ArrayRef>> = p
            .layout
            .sources
            .iter()
            .map(|s| match *s {
                ValueSource::Column(c) => Some(as_numbers(batch.column(c))),
                ValueSource::Set(..) => None,
            })
            .collect();
        let readers: Vec<Reader> = p
            .layout
            .sources
            .iter()
            .zip(&numbers)
            .map(|(s, n)| match *s {
                ValueSource::Column(_) => Reader::Num(NumColumn::of(n.as_ref())),
                ValueSource::Set(c, takes) => Reader::Set(outbox_index(c), takes),
            })
            .collect();
        // Each outbox entry belongs to one output row: the last detection reading it takes it, others copy.
        let mut outbox = outbox.lock().expect("outbox lock");
        for row in 0..batch.num_rows() {
            if rows.is_some_and(|r| r.value(row) == 0) {
                continue;
            }
            let mut key = EntityKey {
                det: det as u32,
                tenant: tenants.value(row),
                keys: [NONE; MAX_KEYS],
            };
            for (slot, col) in key.keys.iter_mut().zip(&key_cols) {
                *slot = col.value(row);
            }
            let pane = panes.value(row);
            let entity = match state.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let tenant = strings.resolve(key.tenant).unwrap_or_default();
                    let held = match held.get_mut(tenant) {
                        Some(h) => h,
                        None => (held.entry(tenant.to_owned()))
                            .or_insert_with(|| vec![0; planned.len()]),
                    };
                    held[det] += 1;
                    let group = (key.tenant, det as u32);
                    if held[det] > config.max_entities_per_detection && !crowded.contains(&group) {
                        crowded.push(group);
                    }
                    e.insert(Entity::new(pane + p.slide_us))
                }
            };
            *touches += 1;
            entity.touched = *touches;
            // An earlier pane (out of order, within lateness) must still have its windows evaluated.
            entity.next_end = entity.next_end.min(pane + p.slide_us);
            let partial = entity.pane_mut(pane, p.layout.sources.len());
            for ((cell, reader), how) in
                partial.cells.iter_mut().zip(&readers).zip(&p.layout.merges)
            {
                match reader {
                    Reader::Num(col) => {
                        if let Some(v) = col.at(row) {
                            cell.merge_num(v, *how);
                        }
                    }
                    Reader::Set(index, takes) => {
                        if let Some(set) = outbox.sets.get_mut(index.value(row) as usize) {
                            cell.absorb(take_or_copy(set, *takes));
                        }
                    }
                }
            }
            if let Some(samples) = outbox.evidence.get_mut(evidence.value(row) as usize) {
                partial
                    .evidence
                    .absorb(take_or_copy(samples, p.layout.evidence.1));
            }
        }
    }

    /// Drops the least active entities of each (tenant, detection) holding more than its limit: those with the
    /// fewest events in their open panes, and of those the least recently active. A flood of one-off
    /// values then replaces its own oldest members, not the entities gathering evidence.
    fn shed_least_active(&mut self) {
        let cap = self.config.max_entities_per_detection;
        for (tenant, det) in std::mem::take(&mut self.crowded) {
            let tenant_name = self.strings.resolve(tenant).unwrap_or_default();
            let Some(held) = self.held.get_mut(tenant_name).map(|h| &mut h[det as usize]) else {
                continue;
            };
            let excess = held.saturating_sub(cap);
            if excess == 0 {
                continue;
            }
            *held = cap;
            let mut group: Vec<(i64, u64, EntityKey)> = (self.state.iter())
                .filter(|(k, _)| k.det == det && k.tenant == tenant)
                .map(|(k, e)| (e.events(), e.touched, *k))
                .collect();
            group.select_nth_unstable(excess - 1);
            let mut latest = i64::MIN;
            for (_, _, key) in &group[..excess] {
                if let Some(e) = self.state.remove(key) {
                    latest = latest.max(e.panes.back().map_or(e.next_end, |p| p.start));
                }
            }
            self.state_overflow += excess as u64;
            let detection = &self.planned[det as usize].detection.name;
            if self
                .shedding
                .count(tenant_name, detection, latest, excess as u64)
            {
                warn!(
                    tenant = tenant_name,
                    detection = detection.as_str(),
                    dropped = excess,
                    limit = cap,
                    "a detection holds as many entities of a tenant as it may: the least active are dropped, \
                     and this detection may miss activity of that tenant until the flood ends"
                );
            }
        }
    }

    /// Evaluates every window whose end is at or before its tenant's watermark (all windows when
    /// `everything`), fires those whose conditions hold, and drops state no future window needs.
    fn close(&mut self, everything: bool) -> Vec<Signal> {
        let Self {
            config,
            zones,
            planned,
            state,
            clocks,
            held,
            shedding,
            scratch,
            strings,
            interned_limit,
            min_interned_limit,
            ..
        } = self;
        let watermarks: FastMap<Sym, i64> = clocks
            .watermarks()
            .filter_map(|(t, wm)| Some((strings.lookup(t)?, wm)))
            .collect();
        let mut fired: Vec<(i64, usize, Signal)> = Vec::new();
        let mut emptied = Vec::new();
        for (key, entity) in state.iter_mut() {
            let det = key.det as usize;
            let p = &planned[det];
            let wm = if everything {
                i64::MAX
            } else {
                match watermarks.get(&key.tenant) {
                    Some(&wm) => wm,
                    None => continue,
                }
            };
            while let Some(first) = entity.panes.front().map(|p| p.start) {
                // Skip empty stretches: the first window that can contain the first pane ends at first + slide.
                if entity.next_end <= first {
                    entity.next_end = first + p.slide_us;
                }
                let end = entity.next_end;
                if end > wm {
                    break;
                }
                let start = end - p.size_us;
                let window = entity.window(start, end);
                // Quiet windows (within an episode that already fired) are not evaluated at all; the others
                // are checked on counts and times first, and distinct sets are only counted when those pass
                // and a condition needs them. Values are merged for real only when a window fires.
                let fires = start >= entity.fired_until
                    && !window.is_empty()
                    && {
                        let panes = &entity.panes;
                        let checked = (panes[window.start].start, panes[window.end - 1].start);
                        std::mem::replace(&mut entity.checked, checked) != checked
                    }
                    && {
                        let (panes, merges) = (&entity.panes, &p.layout.merges);
                        scratch.reset(merges.len());
                        scratch.window_numbers(panes, window.clone(), merges, &p.numeric_needs);
                        holds(&p.numeric_rules, &scratch.nums)
                            && (p.set_rules.is_empty() || {
                                scratch.window_numbers(panes, window.clone(), merges, &p.set_needs);
                                holds(&p.set_rules, &scratch.nums)
                            })
                    };
                if fires {
                    // One signal per episode: overlapping windows, and windows starting within
                    // `repeat_after_secs` of this one, stay quiet.
                    entity.fired_until = end.max(start + p.repeat_after_us);
                    let tenant = strings.resolve(key.tenant).unwrap_or_default();
                    let offset = match config.tenant_utc_offsets_min.get(tenant) {
                        Some(&fixed) => fixed,
                        None => zones.of(tenant).map_or(0, |tz| offset_minutes(tz, start)),
                    };
                    let keys: Vec<Option<String>> = key.keys[..p.detection.group_by.len()]
                        .iter()
                        .map(|&k| strings.resolve(k).map(str::to_owned))
                        .collect();
                    let (values, evidence) =
                        merge_window(&entity.panes, window, &p.layout.merges, strings);
                    let window = (start, end);
                    let signal = build_signal(p, tenant, &keys, window, values, evidence, offset);
                    fired.push((end, det, signal));
                }
                entity.next_end = end + p.slide_us;
                // Panes whose every window has now been evaluated are done.
                let done_before = entity.next_end - p.size_us;
                while entity.panes.front().is_some_and(|p| p.start < done_before) {
                    entity.panes.pop_front();
                }
            }
            if entity.panes.is_empty() && entity.fired_until.saturating_add(p.size_us) <= wm {
                emptied.push(*key);
            }
        }
        for key in emptied {
            state.remove(&key);
            if let Some(h) = strings.resolve(key.tenant).and_then(|t| held.get_mut(t)) {
                h[key.det as usize] = h[key.det as usize].saturating_sub(1);
            }
        }
        let ended = |tenant: &str, end| everything || clocks.watermark(tenant) >= Some(end);
        for shed in shedding.due(ended) {
            let Some(det) = (planned.iter()).position(|p| p.detection.name == shed.detection)
            else {
                continue;
            };
            let (keys, cap) = (
                &planned[det].detection.group_by,
                config.max_entities_per_detection,
            );
            let signal = degraded_signal(&shed, keys, cap);
            fired.push((signal.window_end, det, signal));
        }
        // Strings of closed windows are dropped once they are most of the interner.
        if strings.len() > *interned_limit {
            *strings = compact(state, strings);
            *interned_limit = (2 * strings.len()).max(*min_interned_limit);
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
        let strings = &self.strings;
        let mut entities: BTreeMap<String, Vec<SavedEntity>> = BTreeMap::new();
        for (key, entity) in &self.state {
            let p = &self.planned[key.det as usize];
            let tenant = strings.resolve(key.tenant).unwrap_or_default();
            entities
                .entry(tenant.to_owned())
                .or_default()
                .push(SavedEntity {
                    detection: p.detection.name.clone(),
                    keys: key.keys[..p.detection.group_by.len()]
                        .iter()
                        .map(|&k| strings.resolve(k).map(str::to_owned))
                        .collect(),
                    state: entity.save(strings),
                });
        }
        for v in entities.values_mut() {
            v.sort_by(|a, b| (&a.detection, &a.keys).cmp(&(&b.detection, &b.keys)));
        }
        let (shed, shedding) = self.shedding.save();
        EngineState {
            clocks: self.clocks.snapshot(),
            max_event_us: BTreeMap::new(),
            entities,
            state_overflow: self.state_overflow,
            shed,
            shedding,
        }
    }

    /// Restores a snapshot. State of detections that no longer exist (or whose keys changed) is dropped.
    pub fn restore(&mut self, s: EngineState) {
        self.clocks.restore(s.clocks, s.max_event_us);
        self.state.clear();
        let strings = &mut self.strings;
        *strings = strings.fresh();
        self.held.clear();
        self.touches = 0;
        for (tenant, list) in s.entities {
            for saved in list {
                let Some(det) = self.planned.iter().position(|p| {
                    p.detection.name == saved.detection
                        && p.detection.group_by.len() == saved.keys.len()
                }) else {
                    continue;
                };
                let n = self.planned.len();
                self.held
                    .entry(tenant.clone())
                    .or_insert_with(|| vec![0; n])[det] += 1;
                let mut key = EntityKey {
                    det: det as u32,
                    tenant: strings.intern(&tenant),
                    keys: [NONE; MAX_KEYS],
                };
                for (slot, k) in key.keys.iter_mut().zip(&saved.keys) {
                    *slot = strings.intern_opt(k.as_deref());
                }
                let entity = Entity::load(&saved.state, strings);
                self.touches = self.touches.max(entity.touched);
                self.state.insert(key, entity);
            }
        }
        self.interned_limit = (2 * strings.len()).max(self.min_interned_limit);
        self.state_overflow = s.state_overflow;
        self.shedding.restore(s.shed, s.shedding);
    }

    /// Entities dropped because their detection held `max_entities_per_detection` for their tenant.
    pub fn state_overflow(&self) -> u64 {
        self.state_overflow
    }

    /// Of those, per tenant and detection.
    pub fn shed(&self) -> &ShedTotals {
        self.shedding.totals()
    }

    /// Compacts the interner whenever it doubles, however small (tests of compaction).
    #[cfg(test)]
    pub(super) fn compact_eagerly(&mut self) {
        self.min_interned_limit = 0;
        self.interned_limit = 0;
    }

    /// How many entities hold window state.
    #[cfg(test)]
    pub(super) fn entities(&self) -> usize {
        self.state.len()
    }

    /// How many strings are interned.
    #[cfg(test)]
    pub(super) fn interned(&self) -> usize {
        self.strings.len()
    }
}

/// The interner is compacted when it grows past this many strings and twice its size after the last
/// compaction.
const MIN_INTERNED_LIMIT: usize = 1 << 16;

/// A numeric column as one of the types [`NumColumn`] reads (timestamps in microseconds, other numbers as
/// floats; what does not cast reads as null).
fn as_numbers(col: &ArrayRef) -> ArrayRef {
    match col.data_type() {
        DataType::Int64 | DataType::UInt64 | DataType::Float64 => col.clone(),
        DataType::Timestamp(_, _) => to_micros(col).expect("timestamps cast to microseconds"),
        _ => arrow::compute::cast(col, &DataType::Float64)
            .unwrap_or_else(|_| arrow::array::new_null_array(&DataType::Float64, col.len())),
    }
}

/// A numeric output column, typed once per batch rather than per value.
enum NumColumn<'a> {
    Int(&'a arrow::array::Int64Array),
    UInt(&'a arrow::array::UInt64Array),
    Float(&'a arrow::array::Float64Array),
    Time(&'a arrow::array::TimestampMicrosecondArray),
}

impl<'a> NumColumn<'a> {
    fn of(col: Option<&'a ArrayRef>) -> Self {
        let col = col.expect("numeric columns are prepared");
        match col.data_type() {
            DataType::Int64 => NumColumn::Int(col.as_primitive::<Int64Type>()),
            DataType::UInt64 => NumColumn::UInt(col.as_primitive::<UInt64Type>()),
            DataType::Timestamp(_, _) => {
                NumColumn::Time(col.as_primitive::<TimestampMicrosecondType>())
            }
            _ => NumColumn::Float(col.as_primitive::<Float64Type>()),
        }
    }

    fn at(&self, row: usize) -> Option<Num> {
        match self {
            NumColumn::Int(c) => (!c.is_null(row)).then(|| Num::Int(c.value(row))),
            NumColumn::UInt(c) => (!c.is_null(row)).then(|| Num::Int(c.value(row) as i64)),
            NumColumn::Float(c) => (!c.is_null(row)).then(|| Num::Float(c.value(row))),
            NumColumn::Time(c) => (!c.is_null(row)).then(|| Num::Int(c.value(row))),
        }
    }
}

/// An outbox entry moved out (`take`, for the last detection reading it) or copied.
fn take_or_copy<T: Default + Clone>(entry: &mut T, take: bool) -> T {
    if take {
        std::mem::take(entry)
    } else {
        entry.clone()
    }
}

/// How one value of a pane is read from a plan's output row.
enum Reader<'a> {
    /// A native aggregate.
    Num(NumColumn<'a>),
    /// A distinct set's outbox index, and whether to take the set (else copy it).
    Set(&'a arrow::array::UInt64Array, bool),
}

/// A condition with its value names resolved: it holds when any of its comparisons does.
type Rule = Vec<Check>;

/// One comparison of a [`Rule`].
#[derive(Debug, Clone, Copy)]
struct Check {
    lhs: Operand,
    op: Op,
    rhs: Operand,
}

impl Check {
    /// The values the comparison reads.
    fn values(&self) -> impl Iterator<Item = usize> {
        [self.lhs, self.rhs].into_iter().filter_map(|o| match o {
            Operand::Scaled(_, i) => Some(i),
            _ => None,
        })
    }

    fn holds(&self, values: &[Option<f64>]) -> bool {
        let (Some(l), Some(r)) = (self.lhs.eval(values), self.rhs.eval(values)) else {
            return false;
        };
        match self.op {
            Op::Ge => l >= r,
            Op::Gt => l > r,
            Op::Le => l <= r,
            Op::Lt => l < r,
            Op::Eq => l == r,
            Op::Ne => l != r,
        }
    }
}

/// A side of a comparison.
#[derive(Debug, Clone, Copy)]
enum Operand {
    /// A number.
    Const(f64),
    /// A multiple of the value with this index.
    Scaled(f64, usize),
    /// A name no value has (never holds).
    Unknown,
}

impl Operand {
    fn resolve(t: &Term, names: &[String]) -> Self {
        match &t.name {
            None => Self::Const(t.factor),
            Some(n) => names
                .iter()
                .position(|x| x == n)
                .map_or(Self::Unknown, |i| Self::Scaled(t.factor, i)),
        }
    }

    fn eval(self, values: &[Option<f64>]) -> Option<f64> {
        match self {
            Self::Const(c) => Some(c),
            Self::Scaled(f, i) => Some(f * values[i]?),
            Self::Unknown => None,
        }
    }
}

/// Whether every rule holds.
fn holds(rules: &[Rule], values: &[Option<f64>]) -> bool {
    rules.iter().all(|r| r.iter().any(|c| c.holds(values)))
}

fn build_signal(
    p: &Planned,
    tenant: &str,
    keys: &[Option<String>],
    (start, end): (i64, i64),
    values: Vec<Value>,
    evidence: Vec<String>,
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
        .layout
        .value_names
        .iter()
        .map(String::as_str)
        .zip(&values)
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
        evidence,
        suppressed: false,
        override_applied: None,
    }
}
