//! The event's fields, declared once.
//!
//! The `event_fields!` invocation below lists every field of an event with what each store needs to know of
//! it. It expands to [`Event`], [`EventRef`], the conversions between them and [`EVENT_FIELDS`], the table
//! the Arrow schema ([`events_schema`]), the Arrow builders and readers ([`crate::EventColumns`],
//! [`crate::EventRows`]) and the Elasticsearch mapping are built from. The ClickHouse migrations and the JSON
//! Schema are files: the tests in `fields/tests.rs` check them against the table.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::{Category, Outcome, TenantId};

#[cfg(test)]
mod tests;

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// UTF-8 text.
    Text,
    /// A time: microseconds since the Unix epoch, UTC.
    Timestamp,
    /// An unsigned 32-bit integer.
    UInt32,
    /// An unsigned 16-bit integer.
    UInt16,
}

impl FieldType {
    /// The Arrow type of the column (text is held as string views).
    pub fn arrow(self) -> DataType {
        match self {
            FieldType::Text => DataType::Utf8View,
            FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            FieldType::UInt32 => DataType::UInt32,
            FieldType::UInt16 => DataType::UInt16,
        }
    }

    /// The JSON Schema type of the value in the ECS document.
    pub fn json(self) -> &'static str {
        match self {
            FieldType::Text | FieldType::Timestamp => "string",
            FieldType::UInt32 | FieldType::UInt16 => "integer",
        }
    }
}

/// How Elasticsearch maps an ECS field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elastic {
    /// `date`.
    Date,
    /// `keyword`: matched and aggregated as a whole.
    Keyword,
    /// A `keyword` neither indexed nor aggregated: kept to be read, not searched.
    Unindexed,
    /// `text`: searched word by word.
    Text,
    /// `ip`: only ever given an IP address.
    Ip,
    /// `long`.
    Long,
}

/// One field of an event: its column in Arrow, Parquet and ClickHouse, and the ECS fields it is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventField {
    /// The column's name (Arrow, Parquet and the ClickHouse `events` table).
    pub column: &'static str,
    /// The type of its values.
    pub field_type: FieldType,
    /// Whether a value may be absent.
    pub nullable: bool,
    /// The ClickHouse column type (ClickHouse stores absent text as `''`).
    pub clickhouse: &'static str,
    /// The ECS fields [`Event::to_ecs_json`] renders it as, each with its Elasticsearch mapping.
    pub ecs: &'static [(&'static str, Elastic)],
}

/// Expands the declaration below into [`Event`], [`EventRef`], their conversions and [`EVENT_FIELDS`].
macro_rules! event_fields {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $owned:ty, $borrowed:ty => $column:literal $clickhouse:literal
            [$ecs:literal $elastic:ident $(, $more_ecs:literal $more_elastic:ident)*];
    )+) => {
        /// One normalized security event. Flat in memory (fast to fill and to turn into Arrow columns);
        /// [`Event::to_ecs_json`] renders it as an ECS document.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Event {
            $(
                $(#[doc = $doc])+
                #[doc = ""]
                #[doc = concat!("Column `", $column, "`; ECS `", $ecs, "`" $(, ", `", $more_ecs, "`")*, ".")]
                pub $name: $owned,
            )+
        }

        /// One normalized event, borrowed from wherever it was parsed.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct EventRef<'a> {
            $(
                $(#[doc = $doc])+
                #[doc = ""]
                #[doc = concat!("Column `", $column, "`; ECS `", $ecs, "`" $(, ", `", $more_ecs, "`")*, ".")]
                pub $name: $borrowed,
            )+
        }

        impl Event {
            /// Borrows the event.
            pub fn as_ref(&self) -> EventRef<'_> {
                EventRef { $($name: Owned::borrowed(&self.$name),)+ }
            }
        }

        impl<'a> EventRef<'a> {
            /// Copies the event into an owned [`Event`]. The tenant must be a valid identifier (it is, when it
            /// came from normalization or from [`crate::EventColumns`]).
            pub fn to_owned(&self) -> Event {
                Event { $($name: Owned::from_borrowed(self.$name),)+ }
            }

            /// Hands its values to `to`, in column order: straight-line code, one call per field.
            #[inline]
            pub(crate) fn put(&self, to: &mut impl Put<'a>) {
                $(Borrowed::put(self.$name, to);)+
            }

            /// The event whose values `from` hands out, in column order.
            #[inline]
            pub(crate) fn take(from: &mut impl Take<'a>) -> Self {
                Self { $($name: Borrowed::take(from),)+ }
            }
        }

        /// Every field of [`Event`], in column order.
        pub const EVENT_FIELDS: &[EventField] = &[$(
            EventField {
                column: $column,
                field_type: <$owned as Owned<'static>>::TYPE,
                nullable: <$owned as Owned<'static>>::NULLABLE,
                clickhouse: $clickhouse,
                ecs: &[($ecs, Elastic::$elastic) $(, ($more_ecs, Elastic::$more_elastic))*],
            },
        )+];
    };
}

// Each field: its documentation; its name, its type in `Event` and in `EventRef` => its column, its ClickHouse
// type, [the ECS fields it is rendered as, with their Elasticsearch mapping]. In column order.
event_fields! {
    /// Owning tenant.
    tenant: TenantId, &'a str => "tenant" "LowCardinality(String)" ["organization.id" Keyword];
    /// Stable id: see [`crate::event_id`].
    id: String, &'a str => "event_id" "String" ["event.id" Keyword];
    /// Event time, microseconds since the Unix epoch, UTC.
    timestamp_us: i64, i64 => "timestamp" "DateTime64(6, 'UTC')" ["@timestamp" Date];
    /// The host that logged the event.
    host: String, &'a str => "host" "LowCardinality(String)" ["host.name" Keyword];
    /// The program that logged the event (the syslog program, e.g. `sshd`).
    process_name: String, &'a str => "process_name" "LowCardinality(String)" ["process.name" Keyword];
    /// Its process id.
    process_pid: Option<u32>, Option<u32> => "process_pid" "Nullable(UInt32)" ["process.pid" Long];
    /// `system.auth` for understood auth lines, `system.syslog` otherwise, `auditd.log` for audit records.
    dataset: String, &'a str => "dataset" "LowCardinality(String)" ["event.dataset" Keyword];
    /// What kind of event it is.
    category: Category, &'a str => "category" "LowCardinality(String)" ["event.category" Keyword];
    /// `start`, `end`, `info`, `creation`, `change`, …
    event_type: String, &'a str => "event_type" "LowCardinality(String)" ["event.type" Keyword];
    /// Sentra's precise name for what happened (e.g. `ssh_login`, `sudo_command`).
    action: String, &'a str => "action" "LowCardinality(String)" ["event.action" Keyword];
    /// Whether the attempt succeeded.
    outcome: Outcome, &'a str => "outcome" "LowCardinality(String)" ["event.outcome" Keyword];
    /// The acting or authenticating user.
    user: Option<String>, Option<&'a str> => "user_name" "String" ["user.name" Keyword];
    /// The other account of the event. For `iam` events the account acted upon (created, changed, added to
    /// a group): ECS `user.target.name`. For every other category the account the user acts as (sudo's
    /// `USER=`, su's target, the account a PAM `ruser` tried): ECS `user.effective.name`.
    target_user: Option<String>, Option<&'a str> => "target_user" "String"
        ["user.target.name" Keyword, "user.effective.name" Keyword];
    /// The group acted upon.
    group: Option<String>, Option<&'a str> => "group_name" "String" ["group.name" Keyword];
    /// The source ADDRESS: an IP address, or the host name when only a name was logged (sshd with UseDNS,
    /// PAM's `rhost=`). Rendered as `source.ip` when it parses as an IP and as `source.domain` otherwise;
    /// detections group by it either way.
    source_ip: Option<String>, Option<&'a str> => "source_ip" "String"
        ["source.address" Keyword, "source.ip" Ip, "source.domain" Keyword];
    /// The source port.
    source_port: Option<u16>, Option<u16> => "source_port" "Nullable(UInt16)" ["source.port" Long];
    /// Authentication method (`password`, `publickey`, …).
    auth_method: Option<String>, Option<&'a str> => "auth_method" "LowCardinality(String)"
        ["sentra.auth_method" Keyword];
    /// The command run through sudo (ECS `process.command_line` of the child).
    command: Option<String>, Option<&'a str> => "command" "String" ["sentra.command" Keyword];
    /// The program's message (after `prog[pid]: `).
    message: String, &'a str => "message" "String" ["message" Text];
    /// The raw input line or document.
    original: String, &'a str => "original" "String" ["event.original" Unindexed];
    /// Where the input came from (`file:line`, `kafka:topic:partition:offset`).
    source: String, &'a str => "source" "String" ["sentra.source" Keyword];
}

/// The number of fields.
pub(crate) const FIELDS: usize = EVENT_FIELDS.len();

/// Column names of [`events_schema`], in order.
pub const EVENT_COLUMNS: [&str; FIELDS] = {
    let mut names = [""; FIELDS];
    let mut i = 0;
    while i < FIELDS {
        names[i] = EVENT_FIELDS[i].column;
        i += 1;
    }
    names
};

/// The ECS fields [`Event::to_ecs_json`] computes rather than copies from one field.
const COMPUTED_ECS_FIELDS: [(&str, Elastic); 4] = [
    ("event.kind", Elastic::Keyword),
    ("related.ip", Elastic::Ip),
    ("related.user", Elastic::Keyword),
    ("related.hosts", Elastic::Keyword),
];

/// Every field of the ECS document [`Event::to_ecs_json`] renders, with its Elasticsearch mapping.
pub fn ecs_fields() -> impl Iterator<Item = (&'static str, Elastic)> {
    EVENT_FIELDS
        .iter()
        .flat_map(|f| f.ecs.iter().copied())
        .chain(COMPUTED_ECS_FIELDS)
}

/// The Arrow schema of normalized events: a column per entry of [`EVENT_FIELDS`], in order (the names match
/// the ClickHouse `events` table).
pub fn events_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = EVENT_FIELDS
                .iter()
                .map(|f| Field::new(f.column, f.field_type.arrow(), f.nullable));
            Arc::new(Schema::new(fields.collect::<Vec<_>>()))
        })
        .clone()
}

/// Receives an event's values in column order, each as its column holds it ([`crate::EventColumns`]).
pub(crate) trait Put<'a> {
    /// The next text column's value.
    fn text(&mut self, value: Option<&'a str>);
    /// The next timestamp column's value.
    fn timestamp(&mut self, us: i64);
    /// The next `UInt32` column's value.
    fn uint32(&mut self, value: Option<u32>);
    /// The next `UInt16` column's value.
    fn uint16(&mut self, value: Option<u16>);
}

/// Hands out an event's values in column order ([`crate::EventRows`]).
pub(crate) trait Take<'a> {
    /// The next text column's value.
    fn text(&mut self) -> Option<&'a str>;
    /// The next timestamp column's value.
    fn timestamp(&mut self) -> i64;
    /// The next `UInt32` column's value.
    fn uint32(&mut self) -> Option<u32>;
    /// The next `UInt16` column's value.
    fn uint16(&mut self) -> Option<u16>;
}

/// A field's type in [`EventRef`]: its column's type, and how its value goes to and comes from a column.
trait Borrowed<'a>: Copy {
    const TYPE: FieldType;
    const NULLABLE: bool;
    fn put(self, to: &mut impl Put<'a>);
    fn take(from: &mut impl Take<'a>) -> Self;
}

impl<'a> Borrowed<'a> for &'a str {
    const TYPE: FieldType = FieldType::Text;
    const NULLABLE: bool = false;
    #[inline]
    fn put(self, to: &mut impl Put<'a>) {
        to.text(Some(self))
    }
    #[inline]
    fn take(from: &mut impl Take<'a>) -> Self {
        from.text().unwrap_or("")
    }
}

/// Implements [`Borrowed`] for the types their column holds as they are (`$method` of [`Put`] and [`Take`]).
macro_rules! held_as_they_are {
    ($($borrowed:ty => $field_type:ident $method:ident, nullable: $nullable:literal;)+) => {$(
        impl<'a> Borrowed<'a> for $borrowed {
            const TYPE: FieldType = FieldType::$field_type;
            const NULLABLE: bool = $nullable;
            #[inline]
            fn put(self, to: &mut impl Put<'a>) {
                to.$method(self)
            }
            #[inline]
            fn take(from: &mut impl Take<'a>) -> Self {
                from.$method()
            }
        }
    )+};
}

held_as_they_are! {
    Option<&'a str> => Text text, nullable: true;
    i64 => Timestamp timestamp, nullable: false;
    Option<u32> => UInt32 uint32, nullable: true;
    Option<u16> => UInt16 uint16, nullable: true;
}

/// A field's type in [`Event`], and how it is borrowed into [`EventRef`] and copied back (numbers are
/// simply copied).
trait Owned<'a>: Sized {
    type Borrowed: Borrowed<'a>;
    const TYPE: FieldType = <Self::Borrowed as Borrowed<'a>>::TYPE;
    const NULLABLE: bool = <Self::Borrowed as Borrowed<'a>>::NULLABLE;
    fn borrowed(&'a self) -> Self::Borrowed;
    fn from_borrowed(value: Self::Borrowed) -> Self;
}

impl<'a, T: Borrowed<'a>> Owned<'a> for T {
    type Borrowed = T;
    fn borrowed(&'a self) -> T {
        *self
    }
    fn from_borrowed(value: T) -> Self {
        value
    }
}

impl<'a> Owned<'a> for Option<String> {
    type Borrowed = Option<&'a str>;
    fn borrowed(&'a self) -> Option<&'a str> {
        self.as_deref()
    }
    fn from_borrowed(value: Option<&'a str>) -> Self {
        value.map(str::to_owned)
    }
}

/// Implements [`Owned`] for the types [`EventRef`] holds as their text: `as_str` gives it, `$from_text`
/// reads it back.
macro_rules! held_as_text {
    ($($owned:ty => $from_text:expr;)+) => {$(
        impl<'a> Owned<'a> for $owned {
            type Borrowed = &'a str;
            fn borrowed(&'a self) -> &'a str {
                self.as_str()
            }
            fn from_borrowed(value: &'a str) -> Self {
                $from_text(value)
            }
        }
    )+};
}

held_as_text! {
    String => str::to_owned;
    TenantId => |t| TenantId::new(t).unwrap_or_else(|_| TenantId::new("invalid").expect("valid literal"));
    Category => Category::from_keyword;
    Outcome => Outcome::from_keyword;
}
