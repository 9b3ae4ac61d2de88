//! Numbers ordered like event ids, so detection plans find each group's smallest id with a native
//! `min(__eid)` (a string minimum allocates per group), and the way back from number to event.

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sentra_schemas::events_schema;

use super::state::{id_prefix, FastMap};

/// The column the engine adds to every batch.
pub const EVENT_KEY_COLUMN: &str = "__eid";

/// [`events_schema`] plus [`EVENT_KEY_COLUMN`]: the table detection plans read.
pub fn keyed_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields: Vec<Field> = events_schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new(EVENT_KEY_COLUMN, DataType::UInt64, false));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// A batch's event keys and the way back to its events.
pub struct EventKeys {
    /// The batch with [`EVENT_KEY_COLUMN`] appended.
    pub batch: RecordBatch,
    rows: Rows,
}

enum Rows {
    /// Keys are the top bits of 128-bit hex ids (what normalization makes) above the row number, in the
    /// low `row_bits` bits.
    Prefix { row_bits: u32 },
    /// Keys are ranks of the ids in sorted order (any other ids, or two ids sharing top bits): rank → row.
    Rank(Vec<u32>),
}

impl EventKeys {
    /// Keys for `batch` (with [`events_schema`]).
    pub fn new(batch: &RecordBatch) -> Self {
        let ids = batch.column(1).as_string::<i32>();
        let (keys, rows) = prefix_keys(ids).unwrap_or_else(|| rank_keys(ids));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(keys) as ArrayRef);
        let batch = RecordBatch::try_new(keyed_schema(), columns).expect("keyed schema matches");
        Self { batch, rows }
    }

    /// The id of the event with `key` (touches the id column: call it only when the text is needed).
    pub fn id(&self, key: u64) -> &[u8] {
        let row = match &self.rows {
            Rows::Prefix { row_bits } => Some((key & ((1 << row_bits) - 1)) as usize),
            Rows::Rank(rows) => usize::try_from(key)
                .ok()
                .and_then(|k| rows.get(k))
                .map(|&r| r as usize),
        };
        let ids = self.batch.column(1).as_string::<i32>();
        row.filter(|&r| r < ids.len())
            .map_or(b"", |r| ids.value(r).as_bytes())
    }

    /// The top bits of the [`id_prefix`] of the event with `key` and how many low bits they lack, known
    /// without touching the id column when keys are prefixes.
    pub fn prefix(&self, key: u64) -> Option<(u64, u32)> {
        match self.rows {
            Rows::Prefix { row_bits } => Some((key >> row_bits, row_bits)),
            Rows::Rank(_) => None,
        }
    }
}

/// Order-preserving keys from id prefixes, when every id is 32 lower-case hex digits and no two different
/// ids share the bits the key keeps.
fn prefix_keys(ids: &StringArray) -> Option<(UInt64Array, Rows)> {
    let row_bits = (usize::BITS - ids.len().max(2).saturating_sub(1).leading_zeros()).max(1);
    if row_bits > 24 {
        return None;
    }
    let mut seen: FastMap<u64, u32> = FastMap::default();
    seen.reserve(ids.len());
    let mut keys = Vec::with_capacity(ids.len());
    for row in 0..ids.len() {
        let id = ids.value(row).as_bytes();
        let top = id_prefix(id)? >> row_bits;
        if let Some(&have) = seen.get(&top) {
            if ids.value(have as usize).as_bytes() != id {
                return None;
            }
        } else {
            seen.insert(top, row as u32);
        }
        keys.push((top << row_bits) | row as u64);
    }
    Some((UInt64Array::from(keys), Rows::Prefix { row_bits }))
}

/// Keys as ranks: equal ids share a rank, so the smallest key is the smallest id.
fn rank_keys(ids: &StringArray) -> (UInt64Array, Rows) {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_by(|&a, &b| ids.value(a as usize).cmp(ids.value(b as usize)));
    let mut keys = vec![0u64; ids.len()];
    let mut rank_rows = Vec::with_capacity(ids.len());
    for (i, &row) in order.iter().enumerate() {
        let same = i > 0 && ids.value(order[i - 1] as usize) == ids.value(row as usize);
        if !same {
            rank_rows.push(row);
        }
        keys[row as usize] = (rank_rows.len() - 1) as u64;
    }
    (UInt64Array::from(keys), Rows::Rank(rank_rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Input, NormalizeConfig, Normalizer};
    use sentra_schemas::EventColumns;

    fn batch(ids: &[&str]) -> RecordBatch {
        let line =
            b"Mar 14 00:00:00 web1 sshd[1]: Failed password for root from 10.0.0.1 port 22 ssh2";
        let input = Input {
            bytes: line,
            source: "t:1",
            header_tenant: None,
            fallback_tenant: Some("acme"),
            reference_us: 0,
            reference_is_event_time: false,
        };
        let event = Normalizer::new(NormalizeConfig::default())
            .normalize(&input)
            .unwrap();
        let mut columns = EventColumns::default();
        for id in ids {
            let mut e = event.clone();
            e.id = (*id).to_owned();
            columns.append(&e.as_ref());
        }
        columns.finish()
    }

    fn min_id(keys: &EventKeys, rows: &[usize]) -> String {
        let col = keys.batch.column(keyed_schema().fields().len() - 1);
        let col = col.as_primitive::<arrow::datatypes::UInt64Type>();
        let key = rows.iter().map(|&r| col.value(r)).min().unwrap();
        String::from_utf8(keys.id(key).to_vec()).unwrap()
    }

    #[test]
    fn the_smallest_key_is_the_smallest_id() {
        let hex = [
            "ff00000000000000000000000000000a",
            "0a00000000000000000000000000000b",
            "0a00000000000000000000000000000b",
            "1b00000000000000000000000000000c",
        ];
        let keys = EventKeys::new(&batch(&hex));
        assert!(matches!(keys.rows, Rows::Prefix { .. }));
        assert_eq!(min_id(&keys, &[0, 3]), hex[3]);
        assert_eq!(min_id(&keys, &[0, 1, 3]), hex[1]);
        // Two ids sharing the 64-bit prefix, and ids that are not hex: ranks, still exact.
        for ids in [
            [
                "0a000000000000000000000000000002",
                "0a000000000000000000000000000001",
                "ff",
            ],
            ["evt-9", "evt-10", "evt-2"],
        ] {
            let keys = EventKeys::new(&batch(&ids));
            assert!(matches!(keys.rows, Rows::Rank(_)));
            let mut sorted = ids.to_vec();
            sorted.sort();
            assert_eq!(min_id(&keys, &[0, 1, 2]), sorted[0]);
            assert_eq!(min_id(&keys, &[0, 2]), ids[0].min(ids[2]));
        }
    }
}
