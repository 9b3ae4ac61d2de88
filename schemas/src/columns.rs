//! Events as Arrow columns: the in-memory form every stage after normalization shares.
//!
//! [`EventColumns`] appends events ([`EventRef`]s, borrowed from wherever they were parsed) to Arrow builders
//! without per-field allocation and finishes a [`RecordBatch`] with [`events_schema`]; [`EventRows`] reads
//! them back. Both have a column per entry of [`EVENT_FIELDS`], in order.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    make_view, Array, ArrayRef, AsArray, ByteView, NullBufferBuilder, PrimitiveArray, RecordBatch,
    StringViewArray, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{TimestampMicrosecondType, UInt16Type, UInt32Type};

use crate::fields::{Value, FIELDS};
use crate::{events_schema, EventField, EventRef, FieldType, EVENT_FIELDS};

/// The text columns whose values differ for every event (the id, the source position).
const UNIQUE: [&str; 2] = ["event_id", "source"];

/// Largest block of the bytes a batch's views point into (views address a block with a `u32` offset).
const BLOCK_BYTES: usize = 1 << 30;

/// The bytes the string views of a batch point into: each event's original text once, then whatever value
/// is longer than a view can hold inline and is not part of that text (the id, the source position).
#[derive(Debug)]
struct Arena {
    full: Vec<Buffer>,
    current: Vec<u8>,
    /// Block size limit ([`BLOCK_BYTES`]; smaller in tests).
    block_bytes: usize,
}

impl Arena {
    /// Copies `bytes` in; returns (block, offset).
    fn push(&mut self, bytes: &[u8]) -> (u32, u32) {
        if self.current.len() + bytes.len() > self.block_bytes && !self.current.is_empty() {
            let capacity = self.current.capacity();
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(capacity));
            self.full.push(Buffer::from_vec(full));
        }
        let offset = self.current.len();
        self.current.extend_from_slice(bytes);
        (self.full.len() as u32, offset as u32)
    }

    /// The bytes of a non-inline `view` into the current block (`None` for a view into an earlier one).
    fn bytes(&self, view: u128) -> Option<&[u8]> {
        let view = ByteView::from(view);
        (view.buffer_index as usize == self.full.len()).then(|| {
            let start = view.offset as usize;
            &self.current[start..start + view.length as usize]
        })
    }

    /// Every block.
    fn into_blocks(mut self) -> Arc<[Buffer]> {
        self.full.push(Buffer::from_vec(self.current));
        self.full.into()
    }
}

/// One string column: views into the [`Arena`], and which rows are null.
#[derive(Debug)]
struct Views {
    views: Vec<u128>,
    nulls: NullBufferBuilder,
    /// Views of the last values this column copied to the arena, reused when one comes again (`None` for
    /// the columns whose values are unique per event): a batch then holds each long constant (an action, a
    /// category) once, and filters comparing with it read the same bytes, in cache, for every event.
    copied: Option<[u128; 4]>,
}

impl Views {
    fn with_capacity(n: usize, unique: bool) -> Self {
        Self {
            views: Vec::with_capacity(n),
            nulls: NullBufferBuilder::new(n),
            copied: (!unique).then_some([0; 4]),
        }
    }

    /// The view of `v` (longer than 12 bytes, not inside the event's text): a recent copy, or a new one.
    fn copy(&mut self, v: &[u8], arena: &mut Arena) -> u128 {
        let Some(copied) = &mut self.copied else {
            let (block, at) = arena.push(v);
            return make_view(v, block, at);
        };
        let head = v.len() as u64 | u64::from(u32::from_le_bytes([v[0], v[1], v[2], v[3]])) << 32;
        if let Some(&view) = copied
            .iter()
            .find(|&&view| view as u64 == head && arena.bytes(view) == Some(v))
        {
            return view;
        }
        let (block, at) = arena.push(v);
        let view = make_view(v, block, at);
        copied.rotate_right(1);
        copied[0] = view;
        view
    }

    /// Appends `value`: inline in its view when short, else a view into the event's original text when it
    /// lies inside it, else a copy.
    fn append(&mut self, value: Option<&str>, original: &Original, arena: &mut Arena) {
        let Some(v) = value else {
            self.views.push(0);
            self.nulls.append_null();
            return;
        };
        let v = v.as_bytes();
        let view = if v.len() <= 12 {
            make_view(v, 0, 0)
        } else if original.bytes.start <= v.as_ptr() && v.as_ptr_range().end <= original.bytes.end {
            let at = original.offset + (v.as_ptr() as usize - original.bytes.start as usize) as u32;
            make_view(v, original.block, at)
        } else {
            self.copy(v, arena)
        };
        self.views.push(view);
        self.nulls.append_non_null();
    }
}

/// Where the event being appended has its original text: in the caller's memory and in the arena.
struct Original {
    bytes: Range<*const u8>,
    block: u32,
    offset: u32,
}

/// The builder of one column.
#[derive(Debug)]
enum Builder {
    Text(Views),
    Timestamp(TimestampMicrosecondBuilder),
    UInt32(UInt32Builder),
    UInt16(UInt16Builder),
}

impl Builder {
    /// An empty builder of `field`'s column, sized for `n` values.
    fn new(field: &EventField, n: usize) -> Self {
        match field.field_type {
            FieldType::Text => {
                Builder::Text(Views::with_capacity(n, UNIQUE.contains(&field.column)))
            }
            FieldType::Timestamp => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            ),
            FieldType::UInt32 => Builder::UInt32(UInt32Builder::with_capacity(n)),
            FieldType::UInt16 => Builder::UInt16(UInt16Builder::with_capacity(n)),
        }
    }

    /// The finished column; text views point into `blocks`.
    fn finish(self, blocks: &Arc<[Buffer]>) -> ArrayRef {
        match self {
            Builder::Text(c) => {
                // SAFETY: every view was made by `make_view` from a `&str` whose bytes were copied, unchanged,
                // to the block and offset the view names (or are inline in it), so each view is in bounds and
                // its bytes are valid UTF-8, which is all `try_new` would check.
                let array = unsafe {
                    StringViewArray::new_unchecked(c.views.into(), blocks.clone(), c.nulls.build())
                };
                Arc::new(array)
            }
            Builder::Timestamp(mut b) => Arc::new(b.finish()),
            Builder::UInt32(mut b) => Arc::new(b.finish()),
            Builder::UInt16(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Arrow builders for a batch of events.
///
/// String columns are string views. Each event's original text is copied once; every value found inside it
/// (host, user, address, message…) is a view into that copy, short values are held inline in their view,
/// and only the rest (the id, the source position, a few long constants) is copied again.
#[derive(Debug)]
pub struct EventColumns {
    capacity: usize,
    arena: Arena,
    /// One per entry of [`EVENT_FIELDS`], in order.
    columns: Vec<Builder>,
    len: usize,
}

impl Default for EventColumns {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl EventColumns {
    /// Builders sized for about `n` events.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            capacity: n,
            // The original text (~128 bytes) plus the id and source position that are copied again.
            arena: Arena {
                full: Vec::new(),
                current: Vec::with_capacity(n * 256),
                block_bytes: BLOCK_BYTES,
            },
            columns: EVENT_FIELDS.iter().map(|f| Builder::new(f, n)).collect(),
            len: 0,
        }
    }

    /// Events appended since the last [`EventColumns::finish`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event was appended since the last finish.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one event.
    pub fn append(&mut self, e: &EventRef<'_>) {
        let bytes = e.original.as_bytes();
        let (block, offset) = self.arena.push(bytes);
        let original = Original {
            bytes: bytes.as_ptr_range(),
            block,
            offset,
        };
        for (column, value) in self.columns.iter_mut().zip(e.values()) {
            match (column, value) {
                (Builder::Text(views), Value::Text(v)) => {
                    views.append(v, &original, &mut self.arena)
                }
                (Builder::Timestamp(b), Value::Timestamp(us)) => b.append_value(us),
                (Builder::UInt32(b), Value::UInt32(n)) => b.append_option(n),
                (Builder::UInt16(b), Value::UInt16(n)) => b.append_option(n),
                (_, value) => {
                    unreachable!("{value:?} in another column: the builders follow EVENT_FIELDS")
                }
            }
        }
        self.len += 1;
    }

    /// Finishes the batch and resets the builders for the next one.
    pub fn finish(&mut self) -> RecordBatch {
        std::mem::replace(self, Self::with_capacity(self.capacity)).into_batch()
    }

    /// Finishes the batch, when no other follows from these builders (no fresh ones are allocated).
    pub fn into_batch(self) -> RecordBatch {
        let blocks = self.arena.into_blocks();
        let columns = self
            .columns
            .into_iter()
            .map(|c| c.finish(&blocks))
            .collect();
        RecordBatch::try_new(events_schema(), columns).expect("columns match events_schema")
    }
}

/// One column of a batch, downcast.
enum Column<'a> {
    Text(&'a StringViewArray),
    Timestamp(&'a PrimitiveArray<TimestampMicrosecondType>),
    UInt32(&'a PrimitiveArray<UInt32Type>),
    UInt16(&'a PrimitiveArray<UInt16Type>),
}

impl<'a> Column<'a> {
    /// `array` as the column of `field`.
    fn new(field: &EventField, array: &'a ArrayRef) -> Self {
        match field.field_type {
            FieldType::Text => Column::Text(array.as_string_view()),
            FieldType::Timestamp => Column::Timestamp(array.as_primitive()),
            FieldType::UInt32 => Column::UInt32(array.as_primitive()),
            FieldType::UInt16 => Column::UInt16(array.as_primitive()),
        }
    }

    /// The value in `row`.
    fn value(&self, row: usize) -> Value<'a> {
        match *self {
            Column::Text(a) => Value::Text((!a.is_null(row)).then(|| a.value(row))),
            Column::Timestamp(a) => Value::Timestamp(a.value(row)),
            Column::UInt32(a) => Value::UInt32((!a.is_null(row)).then(|| a.value(row))),
            Column::UInt16(a) => Value::UInt16((!a.is_null(row)).then(|| a.value(row))),
        }
    }
}

/// Reads events back out of a batch with [`events_schema`]. The columns are downcast once, here, not per value.
pub struct EventRows<'a> {
    columns: [Column<'a>; FIELDS],
    rows: usize,
}

impl<'a> EventRows<'a> {
    /// A reader over `batch`, which must have [`events_schema`].
    pub fn new(batch: &'a RecordBatch) -> Self {
        Self {
            columns: std::array::from_fn(|i| Column::new(&EVENT_FIELDS[i], batch.column(i))),
            rows: batch.num_rows(),
        }
    }

    /// Event `row`.
    pub fn get(&self, row: usize) -> EventRef<'a> {
        EventRef::from_values(std::array::from_fn(|i| self.columns[i].value(row)))
    }

    /// Every event, in order.
    pub fn iter(&self) -> impl Iterator<Item = EventRef<'a>> + '_ {
        (0..self.rows).map(|r| self.get(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(
        original: &'a str,
        id: &'a str,
        source: &'a str,
        command: &'a str,
    ) -> EventRef<'a> {
        let host = &original[16..29];
        EventRef {
            id,
            tenant: "acme",
            timestamp_us: 1,
            host,
            process_name: "sshd",
            process_pid: Some(7),
            dataset: "system.auth",
            category: "authentication",
            event_type: "start",
            action: "ssh_invalid_user_login",
            outcome: "failure",
            user: Some(&original[original.len() - 31..original.len() - 21]),
            target_user: None,
            group: None,
            source_ip: Some(&original[original.len() - 20..original.len() - 6]),
            source_port: None,
            auth_method: Some("password"),
            command: Some(command),
            message: &original[40..],
            original,
            source,
        }
    }

    #[test]
    fn events_read_back_as_appended_across_blocks() {
        let lines: Vec<String> = (0..50)
            .map(|i| {
                format!(
                    "Mar 14 00:00:{:02} acme-bastion1 sshd[1]: Failed password for \
                     invalid user oracle{i:04} from 203.0.113.{:03} port 1",
                    i % 60,
                    100 + i
                )
            })
            .collect();
        let ids: Vec<String> = (0..50).map(|i| format!("{i:032x}")).collect();
        let sources: Vec<String> = (0..50).map(|i| format!("/var/log/auth.log:{i}")).collect();
        // Long values from outside the text that repeat, and some that only share a length and prefix.
        let commands: Vec<String> = (0..50)
            .map(|i| format!("/usr/bin/systemctl restart unit{}", i % 3 + i / 40))
            .collect();
        let events: Vec<EventRef<'_>> = (0..50)
            .map(|i| event(&lines[i], &ids[i], &sources[i], &commands[i]))
            .collect();
        let mut columns = EventColumns::with_capacity(4);
        // Room for about three events per block: views must name the right block on each side of a switch.
        columns.arena.block_bytes = 400;
        for e in &events {
            columns.append(e);
        }
        let batch = columns.finish();
        assert_eq!(batch.schema(), events_schema());
        let host = batch.column(3).as_string_view();
        assert!(host.data_buffers().len() > 10, "several blocks");
        // A long constant is copied once per block, not once per event.
        let category = batch.column(7).as_string_view();
        assert_eq!(category.value(0), "authentication");
        assert_eq!(category.views()[0], category.views()[1]);
        let rows = EventRows::new(&batch);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(&rows.get(i), e, "row {i}");
        }
        // The builders start over empty.
        columns.append(&events[0]);
        assert_eq!(EventRows::new(&columns.finish()).get(0), events[0]);
    }
}
