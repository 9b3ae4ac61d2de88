//! Sentra's own DataFusion aggregate functions, for what SQL aggregates do slowly: the distinct members of
//! a pane (`sentra_set`, what a detection's `array_agg(DISTINCT col)` runs as, over the column's interned
//! twin from [`table`](super::table)) and its sample events (`sentra_evidence`). Both are native groups
//! accumulators: DataFusion groups and filters the rows, the accumulators keep sorted member numbers and
//! [`Evidence`] per group.
//!
//! A plan's output row carries an index into the engine's [`Outbox`] rather than the value itself, so the
//! engine merges the group's set or samples without any Arrow list being built or read.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringArray, StringViewArray, UInt64Array,
};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType, UInt32Type, UInt64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::state::{combo_hash, insert_member, union_sorted, Evidence, Sym, NONE, SET_SMALL};

/// Per-group results of the last plan run, taken by the engine after each run.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Distinct members of each emitted `sentra_set` group, sorted.
    pub sets: Vec<Vec<Sym>>,
    /// Samples of each emitted `sentra_evidence` group.
    pub evidence: Vec<Evidence>,
    /// The event ids of the batch the plans are running on, by row: `sentra_evidence` is handed row numbers
    /// and reads the id of a sample it keeps here, so the plans filter and group 4 bytes per row, not the id.
    pub ids: Option<StringViewArray>,
}

/// Where the accumulators put emitted groups, shared with the engine.
pub(super) type SharedOutbox = Arc<Mutex<Outbox>>;

/// Which of the two functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `sentra_set(twin)`: distinct non-null values of a column, read as its interned `UInt32` twin.
    Set,
    /// `sentra_evidence(row, timestamp, dimension…)`: per combination of the dimensions (each the value hash
    /// twin of a column, see [`table`](super::table)), the first time and smallest id (read by the row, a
    /// `UInt32`, from [`Outbox::ids`]).
    Evidence,
}

/// One of the functions, bound to an engine's [`Shared`] state.
#[derive(Debug)]
struct Udaf {
    kind: Kind,
    signature: Signature,
    outbox: SharedOutbox,
}

impl PartialEq for Udaf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.outbox, &other.outbox)
    }
}

impl Eq for Udaf {}

impl Hash for Udaf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        Arc::as_ptr(&self.outbox).hash(state);
    }
}

/// The two functions, to register on the engine's session.
pub(super) fn functions(outbox: &SharedOutbox) -> [AggregateUDF; 2] {
    [
        AggregateUDF::from(Udaf {
            kind: Kind::Set,
            signature: Signature::any(1, Volatility::Immutable),
            outbox: outbox.clone(),
        }),
        AggregateUDF::from(Udaf {
            kind: Kind::Evidence,
            signature: Signature::variadic_any(Volatility::Immutable),
            outbox: outbox.clone(),
        }),
    ]
}

fn single_phase_only<T>() -> Result<T> {
    Err(DataFusionError::NotImplemented(
        "Sentra's pane aggregates run in a single aggregation phase only".into(),
    ))
}

impl AggregateUDFImpl for Udaf {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Set => "sentra_set",
            Kind::Evidence => "sentra_evidence",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        single_phase_only()
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let outbox = self.outbox.clone();
        Ok(match self.kind {
            Kind::Set => Box::new(Groups::<Vec<Sym>> {
                outbox,
                groups: Vec::new(),
            }),
            Kind::Evidence => Box::new(Groups::<Evidence> {
                outbox,
                groups: Vec::new(),
            }),
        })
    }
}

/// A text column read in place: string views (how the engine hands events to its plans), plain strings,
/// or, for anything else (large strings, a set over a number column), the column cast to text.
pub(super) enum Text {
    /// `Utf8View`.
    View(StringViewArray),
    /// `Utf8`, or another type cast to it.
    Plain(StringArray),
}

impl Text {
    /// Reads `col` as text.
    pub(super) fn of(col: &ArrayRef) -> Result<Self> {
        Ok(match col.data_type() {
            DataType::Utf8View => Self::View(col.as_string_view().clone()),
            DataType::Utf8 => Self::Plain(col.as_string::<i32>().clone()),
            _ => Self::Plain(
                arrow::compute::cast(col, &DataType::Utf8)?
                    .as_string::<i32>()
                    .clone(),
            ),
        })
    }

    /// The value at `row`, `None` when null.
    #[inline]
    pub(super) fn get(&self, row: usize) -> Option<&str> {
        match self {
            Self::View(a) => (!a.is_null(row)).then(|| a.value(row)),
            Self::Plain(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// A timestamp column in microseconds, whatever unit DataFusion produced.
pub(super) fn to_micros(col: &ArrayRef) -> Result<ArrayRef> {
    let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
    Ok(arrow::compute::cast(col, &micros)?)
}

/// Whether row `row` passes the aggregate's `FILTER`.
fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

/// Indices `first..first + n` of results just put in the outbox.
fn indices(first: usize, n: usize) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(
        (first..first + n).map(|i| i as u64),
    ))
}

/// What one of the functions keeps per group.
trait PaneGroup: Default + Send + 'static {
    /// Folds the rows of a batch (those passing `filter`) into their groups.
    fn update(
        groups: &mut [Self],
        values: &[ArrayRef],
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        outbox: &SharedOutbox,
    ) -> Result<()>;

    /// Where emitted groups go.
    fn outbox(outbox: &mut Outbox) -> &mut Vec<Self>;

    /// Approximate heap size, bytes.
    fn size(&self) -> usize;
}

impl PaneGroup for Vec<Sym> {
    fn update(
        groups: &mut [Self],
        values: &[ArrayRef],
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        _outbox: &SharedOutbox,
    ) -> Result<()> {
        let members = values[0].as_primitive_opt::<UInt32Type>().ok_or_else(|| {
            DataFusionError::Internal("sentra_set reads a column's interned twin".into())
        })?;
        // Small sets take members one at a time; members of larger ones are sorted and merged in at the end.
        let mut bulk: Vec<(usize, Sym)> = Vec::new();
        for (row, &g) in group_indices.iter().enumerate() {
            let member = members.value(row);
            if member == NONE || !passes(filter, row) {
                continue;
            }
            match &mut groups[g] {
                set if set.len() < SET_SMALL => insert_member(set, member),
                _ => bulk.push((g, member)),
            }
        }
        bulk.sort_unstable();
        bulk.dedup();
        for run in bulk.chunk_by(|x, y| x.0 == y.0) {
            let members: Vec<Sym> = run.iter().map(|&(_, m)| m).collect();
            union_sorted(&mut groups[run[0].0], &members);
        }
        Ok(())
    }

    fn outbox(outbox: &mut Outbox) -> &mut Vec<Self> {
        &mut outbox.sets
    }

    fn size(&self) -> usize {
        self.capacity() * 4 + 24
    }
}

impl PaneGroup for Evidence {
    fn update(
        groups: &mut [Self],
        values: &[ArrayRef],
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        outbox: &SharedOutbox,
    ) -> Result<()> {
        let ids = outbox
            .lock()
            .expect("outbox lock")
            .ids
            .clone()
            .ok_or_else(|| {
                DataFusionError::Internal(
                    "sentra_evidence ran without the batch's event ids".into(),
                )
            })?;
        let rows = values[0]
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| DataFusionError::Internal("sentra_evidence reads row numbers".into()))?;
        let times = to_micros(&values[1])?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let dims = values[2..]
            .iter()
            .map(|v| {
                v.as_primitive_opt::<UInt64Type>().ok_or_else(|| {
                    DataFusionError::Internal(
                        "sentra_evidence reads its dimensions' value hash twins".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for (row, &g) in group_indices.iter().enumerate() {
            if !passes(filter, row) {
                continue;
            }
            let time = if times.is_null(row) {
                i64::MIN
            } else {
                times.value(row)
            };
            let group = &mut groups[g];
            if group.is_past(time) {
                continue;
            }
            let at = rows.value(row) as usize;
            if at >= ids.len() {
                return Err(DataFusionError::Internal(format!(
                    "sentra_evidence: row {at} of a batch of {} events",
                    ids.len()
                )));
            }
            if ids.is_null(at) {
                continue;
            }
            group.add_with(time, ids.value(at).as_bytes(), || {
                combo_hash(dims.iter().map(|d| d.value(row)))
            });
        }
        Ok(())
    }

    fn outbox(outbox: &mut Outbox) -> &mut Vec<Self> {
        &mut outbox.evidence
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Evidence>()
    }
}

/// The groups accumulator of either function.
struct Groups<T> {
    outbox: SharedOutbox,
    groups: Vec<T>,
}

impl<T: PaneGroup> GroupsAccumulator for Groups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, T::default);
        T::update(
            &mut self.groups,
            values,
            group_indices,
            opt_filter,
            &self.outbox,
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let taken = emit_to.take_needed(&mut self.groups);
        let mut outbox = self.outbox.lock().expect("outbox lock");
        let emitted = T::outbox(&mut outbox);
        let (first, n) = (emitted.len(), taken.len());
        emitted.extend(taken);
        Ok(indices(first, n))
    }

    fn state(&mut self, _emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        single_phase_only()
    }

    fn merge_batch(&mut self, _: &[ArrayRef], _: &[usize], _: usize) -> Result<()> {
        single_phase_only()
    }

    fn convert_to_state(&self, _: &[ArrayRef], _: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        single_phase_only()
    }

    fn size(&self) -> usize {
        self.groups.iter().map(T::size).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use arrow::array::UInt32Array;

    use super::*;
    use crate::detect::state::Cell;

    #[test]
    fn a_large_set_is_built_and_merged_without_quadratic_cost() {
        // 2^20 distinct members in scrambled order into one group, then merged with an overlapping set. One
        // at a time into a sorted vector this moves ~2^40 bytes (14 s in a debug build); sorted and merged in
        // bulk, about half a second.
        let n: u32 = 1 << 20;
        let scrambled: Vec<Sym> = (0..n).map(|i| i.wrapping_mul(7919) % n).collect();
        let started = Instant::now();
        let mut groups = vec![Vec::new()];
        let values: [ArrayRef; 1] = [Arc::new(UInt32Array::from(scrambled))];
        let outbox = SharedOutbox::default();
        <Vec<Sym> as PaneGroup>::update(&mut groups, &values, &vec![0; n as usize], None, &outbox)
            .unwrap();
        let mut cell = Cell::Null;
        cell.union(&groups[0]);
        let others: Vec<Sym> = (n / 2..n + n / 2).collect();
        cell.union(&others);
        let elapsed = started.elapsed();
        assert_eq!(groups[0], (0..n).collect::<Vec<_>>());
        assert_eq!(cell, Cell::Set((0..n + n / 2).collect()));
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    }
}
