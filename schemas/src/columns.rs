//! Events as Arrow columns: the in-memory form every stage after normalization shares.
//!
//! [`EventRef`] is one event borrowed from wherever it was parsed; [`EventColumns`] appends them to Arrow
//! builders without per-field allocation and finishes a [`RecordBatch`] with [`events_schema`].

use std::sync::{Arc, OnceLock};

use arrow::array::{
    make_view, Array, ArrayRef, AsArray, ByteView, NullBufferBuilder, PrimitiveArray, RecordBatch,
    StringViewArray, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, UInt16Type, UInt32Type,
};

use crate::{Category, Event, Outcome, TenantId};

/// One normalized event, borrowed. Field meanings are those of [`Event`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub struct EventRef<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub timestamp_us: i64,
    pub host: &'a str,
    pub process_name: &'a str,
    pub process_pid: Option<u32>,
    pub dataset: &'a str,
    pub category: &'a str,
    pub event_type: &'a str,
    pub action: &'a str,
    pub outcome: &'a str,
    pub user: Option<&'a str>,
    /// The account acted upon (`iam`) or acted as (other categories); see [`crate::Event::target_user`].
    pub target_user: Option<&'a str>,
    pub group: Option<&'a str>,
    /// The source address: an IP, or the host name when only a name was logged (see
    /// [`crate::Event::source_ip`]).
    pub source_ip: Option<&'a str>,
    pub source_port: Option<u16>,
    pub auth_method: Option<&'a str>,
    pub command: Option<&'a str>,
    pub message: &'a str,
    pub original: &'a str,
    pub source: &'a str,
}

impl Event {
    /// Borrows the event.
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            id: &self.id,
            tenant: self.tenant.as_str(),
            timestamp_us: self.timestamp_us,
            host: &self.host,
            process_name: &self.process_name,
            process_pid: self.process_pid,
            dataset: &self.dataset,
            category: self.category.as_str(),
            event_type: &self.event_type,
            action: &self.action,
            outcome: self.outcome.as_str(),
            user: self.user.as_deref(),
            target_user: self.target_user.as_deref(),
            group: self.group.as_deref(),
            source_ip: self.source_ip.as_deref(),
            source_port: self.source_port,
            auth_method: self.auth_method.as_deref(),
            command: self.command.as_deref(),
            message: &self.message,
            original: &self.original,
            source: &self.source,
        }
    }
}

fn category(s: &str) -> Category {
    match s {
        "authentication" => Category::Authentication,
        "session" => Category::Session,
        "iam" => Category::Iam,
        "process" => Category::Process,
        "network" => Category::Network,
        _ => Category::Unknown,
    }
}

fn outcome(s: &str) -> Outcome {
    match s {
        "success" => Outcome::Success,
        "failure" => Outcome::Failure,
        _ => Outcome::Unknown,
    }
}

impl EventRef<'_> {
    /// Copies the event into an owned [`Event`]. The tenant must be a valid identifier (it is, when it came
    /// from normalization or from [`EventColumns`]).
    pub fn to_owned(&self) -> Event {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Event {
            id: self.id.to_owned(),
            tenant: TenantId::new(self.tenant)
                .unwrap_or_else(|_| TenantId::new("invalid").expect("valid literal")),
            timestamp_us: self.timestamp_us,
            host: self.host.to_owned(),
            process_name: self.process_name.to_owned(),
            process_pid: self.process_pid,
            dataset: self.dataset.to_owned(),
            category: category(self.category),
            event_type: self.event_type.to_owned(),
            action: self.action.to_owned(),
            outcome: outcome(self.outcome),
            user: own(self.user),
            target_user: own(self.target_user),
            group: own(self.group),
            source_ip: own(self.source_ip),
            source_port: self.source_port,
            auth_method: own(self.auth_method),
            command: own(self.command),
            message: self.message.to_owned(),
            original: self.original.to_owned(),
            source: self.source.to_owned(),
        }
    }
}

/// Column names of [`events_schema`], in order. `source_ip` holds the source ADDRESS (an IP, or the host
/// name when only a name was logged); `target_user` the account acted upon or acted as (see
/// [`crate::Event`]).
pub const EVENT_COLUMNS: [&str; 21] = [
    "tenant",
    "event_id",
    "timestamp",
    "host",
    "process_name",
    "process_pid",
    "dataset",
    "category",
    "event_type",
    "action",
    "outcome",
    "user_name",
    "target_user",
    "group_name",
    "source_ip",
    "source_port",
    "auth_method",
    "command",
    "message",
    "original",
    "source",
];

/// The Arrow schema of normalized events (column names match the ClickHouse `events` table).
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = EVENT_COLUMNS.iter().map(|&name| {
                let (dt, nullable) = match name {
                    "timestamp" => (
                        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                        false,
                    ),
                    "process_pid" => (DataType::UInt32, true),
                    "source_port" => (DataType::UInt16, true),
                    "user_name" | "target_user" | "group_name" | "source_ip" | "auth_method"
                    | "command" => (DataType::Utf8View, true),
                    _ => (DataType::Utf8View, false),
                };
                Field::new(name, dt, nullable)
            });
            Arc::new(Schema::new(fields.collect::<Vec<_>>()))
        })
        .clone()
}

/// Number of string columns in [`EVENT_COLUMNS`] (all but the three typed ones).
const STRINGS: usize = 18;

/// The string columns whose values differ for every event (the id, the source position).
const UNIQUE: [usize; 2] = [1, 17];

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
    strings: Vec<Views>,
    timestamp: TimestampMicrosecondBuilder,
    pid: UInt32Builder,
    port: UInt16Builder,
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
            strings: (0..STRINGS)
                .map(|i| Views::with_capacity(n, UNIQUE.contains(&i)))
                .collect(),
            timestamp: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            pid: UInt32Builder::with_capacity(n),
            port: UInt16Builder::with_capacity(n),
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
        let values: [Option<&str>; STRINGS] = [
            Some(e.tenant),
            Some(e.id),
            Some(e.host),
            Some(e.process_name),
            Some(e.dataset),
            Some(e.category),
            Some(e.event_type),
            Some(e.action),
            Some(e.outcome),
            e.user,
            e.target_user,
            e.group,
            e.source_ip,
            e.auth_method,
            e.command,
            Some(e.message),
            Some(e.original),
            Some(e.source),
        ];
        let original = e.original.as_bytes();
        let (block, start) = self.arena.push(original);
        let inside = original.as_ptr_range();
        for (column, value) in self.strings.iter_mut().zip(values) {
            let Some(v) = value else {
                column.views.push(0);
                column.nulls.append_null();
                continue;
            };
            let v = v.as_bytes();
            let view = if v.len() <= 12 {
                make_view(v, 0, 0)
            } else if inside.start <= v.as_ptr() && v.as_ptr_range().end <= inside.end {
                let at = start + (v.as_ptr() as usize - inside.start as usize) as u32;
                make_view(v, block, at)
            } else {
                column.copy(v, &mut self.arena)
            };
            column.views.push(view);
            column.nulls.append_non_null();
        }
        self.timestamp.append_value(e.timestamp_us);
        self.pid.append_option(e.process_pid);
        self.port.append_option(e.source_port);
        self.len += 1;
    }

    /// Finishes the batch and resets the builders for the next one.
    pub fn finish(&mut self) -> RecordBatch {
        std::mem::replace(self, Self::with_capacity(self.capacity)).into_batch()
    }

    /// Finishes the batch, when no other follows from these builders (no fresh ones are allocated).
    pub fn into_batch(mut self) -> RecordBatch {
        let blocks = self.arena.into_blocks();
        let mut s = self.strings.into_iter().map(|c| {
            // SAFETY: every view was made by `make_view` from a `&str` whose bytes were copied, unchanged, to
            // the block and offset the view names (or are inline in it), so each view is in bounds and
            // its bytes are valid UTF-8, which is all `try_new` would check.
            let array = unsafe {
                StringViewArray::new_unchecked(c.views.into(), blocks.clone(), c.nulls.build())
            };
            Arc::new(array) as ArrayRef
        });
        let mut next = || s.next().expect("string column");
        let columns: Vec<ArrayRef> = vec![
            next(),
            next(),
            Arc::new(self.timestamp.finish()),
            next(),
            next(),
            Arc::new(self.pid.finish()),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            next(),
            Arc::new(self.port.finish()),
            next(),
            next(),
            next(),
            next(),
            next(),
        ];
        RecordBatch::try_new(events_schema(), columns).expect("columns match events_schema")
    }
}

/// Reads events back out of a batch with [`events_schema`]. The columns are downcast once, here, not per value.
pub struct EventRows<'a> {
    /// The string columns, in [`EVENT_COLUMNS`] order (the three typed ones left out).
    strings: [&'a StringViewArray; STRINGS],
    timestamp: &'a PrimitiveArray<TimestampMicrosecondType>,
    pid: &'a PrimitiveArray<UInt32Type>,
    port: &'a PrimitiveArray<UInt16Type>,
    rows: usize,
}

impl<'a> EventRows<'a> {
    /// A reader over `batch`, which must have [`events_schema`].
    pub fn new(batch: &'a RecordBatch) -> Self {
        let mut strings = batch
            .columns()
            .iter()
            .filter_map(|c| c.as_string_view_opt());
        Self {
            strings: std::array::from_fn(|_| strings.next().expect("events_schema")),
            timestamp: batch.column(2).as_primitive(),
            pid: batch.column(5).as_primitive(),
            port: batch.column(15).as_primitive(),
            rows: batch.num_rows(),
        }
    }

    fn s(&self, col: usize, row: usize) -> Option<&'a str> {
        let a = self.strings[col];
        (!a.is_null(row)).then(|| a.value(row))
    }

    /// Event `row`.
    pub fn get(&self, row: usize) -> EventRef<'a> {
        let req = |col| self.s(col, row).unwrap_or("");
        let (pid, port) = (self.pid, self.port);
        EventRef {
            tenant: req(0),
            id: req(1),
            timestamp_us: self.timestamp.value(row),
            host: req(2),
            process_name: req(3),
            process_pid: (!pid.is_null(row)).then(|| pid.value(row)),
            dataset: req(4),
            category: req(5),
            event_type: req(6),
            action: req(7),
            outcome: req(8),
            user: self.s(9, row),
            target_user: self.s(10, row),
            group: self.s(11, row),
            source_ip: self.s(12, row),
            source_port: (!port.is_null(row)).then(|| port.value(row)),
            auth_method: self.s(13, row),
            command: self.s(14, row),
            message: req(15),
            original: req(16),
            source: req(17),
        }
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
