//! The `events` table the detection plans read, made once per batch from an events batch.
//!
//! - Only the [`events_schema`] columns some detection names are in it; the rest are never scanned.
//! - Text stays as the events batch has it, string views, so a plan's filter moves 16-byte views instead of
//!   copying strings, and short strings compare inline.
//! - The columns plans group by, collect distinct members of or compare with text literals (the tenant, every
//!   `group_by` column, every `array_agg(DISTINCT col)`, every `col = 'x'` of a filter, see
//!   [`predicates`](super::predicates)) also come interned, as `UInt32` twins named [`sym_column`]. Each value
//!   is interned once per batch instead of once per plan, and plans group and compare integers.
//! - The distinct-member columns, which are also the dimensions of samples, come with a second twin of each
//!   value's hash ([`hash_column`]), so a sample's combination is hashed from numbers, not text.
//! - Each window slide the detections use has a column of panes ([`pane_column`]), computed once per batch.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringViewArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType, UInt32Type};
use sentra_schemas::events_schema;

use super::aggregates::Text;
use super::definition::{Detection, Merge};
use super::engine::{parse_distinct, values};
use super::predicates::compared_columns;
use super::state::{Interner, Sym, NONE};

/// The name of `column`'s interned twin.
pub(super) fn sym_column(column: &str) -> String {
    format!("__sym_{column}")
}

/// The name of `column`'s twin of value hashes ([`value_hash`](super::state::value_hash)).
pub(super) fn hash_column(column: &str) -> String {
    format!("__hash_{column}")
}

/// The name of the column of window panes `slide_us` long: each event's time rounded down to a multiple of
/// the slide (epoch µs).
pub(super) fn pane_column(slide_us: i64) -> String {
    format!("__pane_{slide_us}")
}

/// The column numbering an events batch's rows (`UInt32`), which `sentra_evidence` reads instead of the id.
pub(super) const ROW: &str = "__row";

/// Which columns of an events batch the plans see, and how.
#[derive(Debug)]
pub(super) struct Table {
    /// The table's schema: the columns, then their twins.
    pub schema: SchemaRef,
    /// Events columns in the table, in order.
    columns: Vec<usize>,
    /// Events columns with an interned twin, in order…
    twins: Vec<usize>,
    /// …and which of those (indices into `twins`) have a hash twin too.
    hashed: Vec<usize>,
    /// Pane lengths with a column, in order, µs.
    slides: Vec<i64>,
    /// See [`Self::host_twin`].
    host_twin: usize,
}

impl Table {
    /// The table for `detections`: the columns their filters, keys and values (builtins included) name,
    /// plus those the engine's own SQL reads (tenant, time, the row number [`ROW`]) and the host its clocks
    /// read.
    pub fn for_detections(detections: &[Detection]) -> Self {
        let mut named: HashSet<&str> = ["tenant", "timestamp", "host"].into();
        let mut interned: HashSet<&str> = ["tenant", "host"].into();
        let mut distinct = Vec::new();
        let mut compared = Vec::new();
        for d in detections {
            let texts = [d.filter.as_str()]
                .into_iter()
                .chain(d.group_by.iter().map(String::as_str))
                .chain(values(d).map(|(_, sql, _)| sql));
            for text in texts {
                named.extend(text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')));
            }
            interned.extend(d.group_by.iter().map(String::as_str));
            compared.extend(
                [d.filter.as_str()]
                    .into_iter()
                    .chain(values(d).map(|(_, sql, _)| sql))
                    .flat_map(compared_columns),
            );
            distinct.extend(
                values(d)
                    .filter(|&(_, _, merge)| merge == Merge::Union)
                    .filter_map(|(_, sql, _)| parse_distinct(sql).map(|(col, _)| col)),
            );
        }
        interned.extend(distinct.iter().map(String::as_str));
        interned.extend(compared.iter().map(String::as_str));
        let events = events_schema();
        let mut fields = Vec::new();
        let (mut columns, mut twins) = (Vec::new(), Vec::new());
        for (i, f) in events.fields().iter().enumerate() {
            if named.contains(f.name().as_str()) {
                columns.push(i);
                fields.push(f.clone());
            }
        }
        for (i, f) in events.fields().iter().enumerate() {
            if interned.contains(f.name().as_str()) {
                twins.push(i);
                let name = sym_column(f.name());
                fields.push(Arc::new(Field::new(name, DataType::UInt32, false)));
            }
        }
        let mut hashed = Vec::new();
        for (t, &i) in twins.iter().enumerate() {
            let name = events.field(i).name();
            if distinct.contains(name) {
                hashed.push(t);
                fields.push(Arc::new(Field::new(
                    hash_column(name),
                    DataType::UInt64,
                    false,
                )));
            }
        }
        let mut slides: Vec<i64> = detections
            .iter()
            .map(|d| d.window.size_slide_us().1)
            .collect();
        slides.sort_unstable();
        slides.dedup();
        for &slide in &slides {
            fields.push(Arc::new(Field::new(
                pane_column(slide),
                DataType::Int64,
                false,
            )));
        }
        fields.push(Arc::new(Field::new(ROW, DataType::UInt32, false)));
        let host = events.index_of("host").expect("events have a host");
        let host_twin = columns.len() + twins.iter().position(|&i| i == host).expect("interned");
        Self {
            schema: Arc::new(Schema::new(fields)),
            host_twin,
            columns,
            twins,
            hashed,
            slides,
        }
    }

    /// The column of the tenant's interned twin in this table's batches.
    pub fn tenant_twin(&self) -> usize {
        // The tenant is the events' first column, so its twin is the first twin.
        debug_assert_eq!(self.twins.first(), Some(&0));
        self.columns.len()
    }

    /// The column of the host's interned twin (the engine keeps a clock per host).
    pub fn host_twin(&self) -> usize {
        self.host_twin
    }

    /// An events batch as this table; twins are interned into `strings` (null is
    /// [`NONE`](super::state::NONE)).
    pub fn batch(&self, events: &RecordBatch, strings: &mut Interner) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| events.column(i).clone())
            .collect();
        let first_twin = columns.len();
        for &i in &self.twins {
            let column = events.column(i);
            let syms = match column.as_string_view_opt() {
                Some(views) => intern_views(views, strings),
                None => {
                    let text = Text::of(column).expect("any column casts to text");
                    let syms = (0..events.num_rows()).map(|row| strings.intern_opt(text.get(row)));
                    UInt32Array::from_iter_values(syms)
                }
            };
            columns.push(Arc::new(syms));
        }
        for &t in &self.hashed {
            let syms = columns[first_twin + t].as_primitive::<UInt32Type>();
            let hashes = syms.values().iter().map(|&sym| strings.hash(sym));
            columns.push(Arc::new(UInt64Array::from_iter_values(hashes)));
        }
        let times = events
            .column_by_name("timestamp")
            .expect("events have a timestamp")
            .as_primitive::<TimestampMicrosecondType>();
        for &slide in &self.slides {
            let panes = times.values().iter().map(|t| t - t.rem_euclid(slide));
            columns.push(Arc::new(Int64Array::from_iter_values(panes)));
        }
        columns.push(Arc::new(UInt32Array::from_iter_values(
            0..events.num_rows() as u32,
        )));
        RecordBatch::try_new(self.schema.clone(), columns).expect("columns match the table schema")
    }
}

/// Interns a column of string views (null is [`NONE`]). Within one array a view names its value exactly (a
/// value of up to 12 bytes is held whole in it; a longer one by length, prefix, buffer and offset), so a
/// repeated view is found in a small direct-mapped cache keyed by the view, without hashing the string. Short
/// values repeat as views by nature; long ones do when the batch holds one copy of a repeated value (as
/// `EventColumns` does for constants such as an action).
fn intern_views(column: &StringViewArray, strings: &mut Interner) -> UInt32Array {
    const SLOTS: usize = 512;
    // No view has this length, so no view matches an empty slot.
    let mut cache = [(u128::MAX, NONE); SLOTS];
    let views = column.views();
    let syms = (0..column.len()).map(|row| -> Sym {
        if column.is_null(row) {
            return NONE;
        }
        let view = views[row];
        let mixed = (view as u64 ^ (view >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut cache[(mixed >> 55) as usize % SLOTS];
        if slot.0 != view {
            *slot = (view, strings.intern(column.value(row)));
        }
        slot.1
    });
    UInt32Array::from_iter_values(syms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_views_resolve_to_their_text_whatever_the_cache_holds() {
        // Many more short values than cache slots (so slots are shared and overwritten), repeats, nulls and
        // values too long to be inline.
        let values: Vec<Option<String>> = (0..5000u32)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(format!("a-much-longer-value-{}", i % 50)),
                _ => Some(format!("u{}", (i * 7919) % 1500)),
            })
            .collect();
        let column = StringViewArray::from_iter(values.iter().map(Option::as_deref));
        let mut strings = Interner::default();
        let syms = intern_views(&column, &mut strings);
        let mut numbers = std::collections::HashMap::new();
        for (sym, value) in syms.values().iter().zip(&values) {
            assert_eq!(strings.resolve(*sym), value.as_deref());
            // The same text always gets the same number.
            assert_eq!(*numbers.entry(value.clone()).or_insert(*sym), *sym);
        }
        assert!(numbers.len() > 2 * 512, "more values than cache slots");
    }
}
