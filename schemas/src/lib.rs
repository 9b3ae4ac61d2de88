//! Sentra's shared vocabulary: the types every stage agrees on, and the store schemas as files.
//!
//! - [`TenantId`]: a validated tenant identifier; every event, signal and query is scoped by one.
//! - [`Event`]: one normalized, ECS-shaped security event ([`Event::to_ecs_json`] renders ECS JSON).
//! - [`EVENT_FIELDS`]: the event's fields, declared once; the Arrow schema and the Elasticsearch mapping are
//!   built from it, and the ClickHouse DDL and the JSON Schema are tested against it.
//! - [`EventColumns`] and [`EventRows`]: events as Arrow columns, and back.
//! - [`Signal`]: a calm, explainable detection result with a stable id.
//! - [`audit`]: hash-chained audit records per tenant.
//! - [`Quarantined`]: input that could not be accepted, kept with the reason and its original bytes.
//! - [`text::printable`]: a field's text made safe to show on a terminal, in chat, e-mail or HTML.
//! - [`escape_invalid_utf8`]: `event.original` of a line that is not valid UTF-8, every byte kept.
//!
//! The JSON Schemas and ClickHouse DDL live beside this crate (`schemas/json`, `schemas/clickhouse`) and are
//! embedded here so the binary carries exactly the schema it was tested with.

#![warn(missing_docs)]

pub mod audit;
mod clickhouse;
mod columns;
mod event;
mod fields;
#[cfg(test)]
mod fuzz;
mod ids;
mod original;
mod quarantine;
mod signal;
mod tenant;
pub mod text;
pub mod time;

pub use clickhouse::{clickhouse_statements, CLICKHOUSE_MIGRATIONS, CLICKHOUSE_TENANT_ACCESS};
pub use columns::{EventColumns, EventRows};
pub use event::{Category, Outcome};
pub use fields::{
    ecs_fields, events_schema, Elastic, Event, EventField, EventRef, FieldType, EVENT_COLUMNS,
    EVENT_FIELDS,
};
pub use ids::{event_id, event_id_into, hex_digest, hex_digest_plain};
pub use original::{decode_escaped, escape_invalid_utf8};
pub use quarantine::{QuarantineReason, Quarantined};
pub use signal::{AppliedOverride, MitreTechnique, RiskFactor, Severity, Signal};
pub use tenant::{TenantError, TenantId};

/// JSON Schema of one normalized event as `sentra normalize` prints it.
pub const EVENT_JSON_SCHEMA: &str = include_str!("../json/event.schema.json");
/// JSON Schema of the envelope POSTed to SOAR webhooks (the contract SOAR stories depend on).
pub const SOAR_ENVELOPE_JSON_SCHEMA: &str = include_str!("../json/soar_envelope.schema.json");
/// JSON Schema of one signal as `sentra replay` prints it.
pub const SIGNAL_JSON_SCHEMA: &str = include_str!("../json/signal.schema.json");
