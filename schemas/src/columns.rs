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

use crate::fields::{Put, Take};
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

/// Arrow builders for a batch of events.
///
/// String columns are string views. Each event's original text is copied once; every value found inside it
/// (host, user, address, message…) is a view into that copy, short values are held inline in their view,
/// and only the rest (the id, the source position, a few long constants) is copied again.
#[derive(Debug)]
pub struct EventColumns {
    capacity: usize,
    arena: Arena,
    /// The builders of each kind of column, each kind in [`EVENT_FIELDS`] order.
    texts: Vec<Views>,
    timestamps: Vec<TimestampMicrosecondBuilder>,
    uint32s: Vec<UInt32Builder>,
    uint16s: Vec<UInt16Builder>,
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
            texts: of_type(FieldType::Text)
                .map(|f| Views::with_capacity(n, UNIQUE.contains(&f.column)))
                .collect(),
            timestamps: of_type(FieldType::Timestamp)
                .map(|_| TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"))
                .collect(),
            uint32s: of_type(FieldType::UInt32)
                .map(|_| UInt32Builder::with_capacity(n))
                .collect(),
            uint16s: of_type(FieldType::UInt16)
                .map(|_| UInt16Builder::with_capacity(n))
                .collect(),
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
        let mut values = Appender {
            columns: self,
            texts: [None; TEXTS],
            next: Cursor::default(),
        };
        e.put(&mut values);
        // One loop over the text columns, rather than a call per column.
        let texts = values.texts;
        for (column, value) in self.texts.iter_mut().zip(texts) {
            column.append(value, &original, &mut self.arena);
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
        let mut texts = self.texts.into_iter();
        let mut timestamps = self.timestamps.into_iter();
        let mut uint32s = self.uint32s.into_iter();
        let mut uint16s = self.uint16s.into_iter();
        let columns = EVENT_FIELDS
            .iter()
            .map(|f| -> ArrayRef {
                let kind = "a builder per column of EVENT_FIELDS";
                match f.field_type {
                    FieldType::Text => {
                        let c = texts.next().expect(kind);
                        // SAFETY: every view was made by `make_view` from a `&str` whose bytes were copied,
                        // unchanged, to the block and offset the view names (or are inline in it), so each
                        // view is in bounds and its bytes are valid UTF-8, which is all `try_new` would check.
                        Arc::new(unsafe {
                            StringViewArray::new_unchecked(
                                c.views.into(),
                                blocks.clone(),
                                c.nulls.build(),
                            )
                        })
                    }
                    FieldType::Timestamp => Arc::new(timestamps.next().expect(kind).finish()),
                    FieldType::UInt32 => Arc::new(uint32s.next().expect(kind).finish()),
                    FieldType::UInt16 => Arc::new(uint16s.next().expect(kind).finish()),
                }
            })
            .collect();
        RecordBatch::try_new(events_schema(), columns).expect("columns match events_schema")
    }
}

/// The fields of one type, in [`EVENT_FIELDS`] order.
fn of_type(t: FieldType) -> impl Iterator<Item = &'static EventField> {
    EVENT_FIELDS.iter().filter(move |f| f.field_type == t)
}

/// The number of text columns.
const TEXTS: usize = {
    let (mut n, mut i) = (0, 0);
    while i < EVENT_FIELDS.len() {
        if matches!(EVENT_FIELDS[i].field_type, FieldType::Text) {
            n += 1;
        }
        i += 1;
    }
    n
};

/// Which column of each kind ([`FieldType`]) a value goes to or comes from next.
#[derive(Default)]
struct Cursor([usize; 4]);

impl Cursor {
    /// The index, among the columns of `kind`, of the next one; moves past it.
    fn of(&mut self, kind: FieldType) -> usize {
        let next = &mut self.0[kind as usize];
        *next += 1;
        *next - 1
    }
}

/// Takes one event's values: numbers straight to the next builder of their kind, texts into `texts` (in
/// column order) for [`EventColumns::append`] to append in one loop.
struct Appender<'c, 'a> {
    columns: &'c mut EventColumns,
    texts: [Option<&'a str>; TEXTS],
    next: Cursor,
}

impl<'a> Put<'a> for Appender<'_, 'a> {
    #[inline]
    fn text(&mut self, value: Option<&'a str>) {
        let i = self.next.of(FieldType::Text);
        self.texts[i] = value;
    }
    #[inline]
    fn timestamp(&mut self, us: i64) {
        let i = self.next.of(FieldType::Timestamp);
        self.columns.timestamps[i].append_value(us);
    }
    #[inline]
    fn uint32(&mut self, value: Option<u32>) {
        let i = self.next.of(FieldType::UInt32);
        self.columns.uint32s[i].append_option(value);
    }
    #[inline]
    fn uint16(&mut self, value: Option<u16>) {
        let i = self.next.of(FieldType::UInt16);
        self.columns.uint16s[i].append_option(value);
    }
}

/// Reads one row's values, each from the next column of its kind.
struct Reader<'r, 'a> {
    rows: &'r EventRows<'a>,
    row: usize,
    next: Cursor,
}

impl<'a> Take<'a> for Reader<'_, 'a> {
    #[inline]
    fn text(&mut self) -> Option<&'a str> {
        let a = self.rows.texts[self.next.of(FieldType::Text)];
        (!a.is_null(self.row)).then(|| a.value(self.row))
    }
    #[inline]
    fn timestamp(&mut self) -> i64 {
        self.rows.timestamps[self.next.of(FieldType::Timestamp)].value(self.row)
    }
    #[inline]
    fn uint32(&mut self) -> Option<u32> {
        let a = self.rows.uint32s[self.next.of(FieldType::UInt32)];
        (!a.is_null(self.row)).then(|| a.value(self.row))
    }
    #[inline]
    fn uint16(&mut self) -> Option<u16> {
        let a = self.rows.uint16s[self.next.of(FieldType::UInt16)];
        (!a.is_null(self.row)).then(|| a.value(self.row))
    }
}

/// Reads events back out of a batch with [`events_schema`]. The columns are downcast once, here, not per value.
pub struct EventRows<'a> {
    texts: Vec<&'a StringViewArray>,
    timestamps: Vec<&'a PrimitiveArray<TimestampMicrosecondType>>,
    uint32s: Vec<&'a PrimitiveArray<UInt32Type>>,
    uint16s: Vec<&'a PrimitiveArray<UInt16Type>>,
    rows: usize,
}

impl<'a> EventRows<'a> {
    /// A reader over `batch`, which must have [`events_schema`].
    pub fn new(batch: &'a RecordBatch) -> Self {
        let columns = |t: FieldType| {
            EVENT_FIELDS
                .iter()
                .zip(batch.columns())
                .filter(move |(f, _)| f.field_type == t)
                .map(|(_, c)| c)
        };
        Self {
            texts: columns(FieldType::Text)
                .map(|c| c.as_string_view())
                .collect(),
            timestamps: columns(FieldType::Timestamp)
                .map(|c| c.as_primitive())
                .collect(),
            uint32s: columns(FieldType::UInt32)
                .map(|c| c.as_primitive())
                .collect(),
            uint16s: columns(FieldType::UInt16)
                .map(|c| c.as_primitive())
                .collect(),
            rows: batch.num_rows(),
        }
    }

    /// Event `row`.
    pub fn get(&self, row: usize) -> EventRef<'a> {
        EventRef::take(&mut Reader {
            rows: self,
            row,
            next: Cursor::default(),
        })
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
