//! Sentra's shared vocabulary: the types every stage agrees on, and the store schemas as files.
//!
//! - [`TenantId`]: a validated tenant identifier; every event, signal and query is scoped by one.
//! - [`Event`]: one normalized, ECS-shaped security event ([`Event::to_ecs_json`] renders ECS JSON).
//! - [`Signal`]: a calm, explainable detection result with a stable id.
//! - [`audit`]: hash-chained audit records per tenant.
//! - [`Quarantined`]: input that could not be accepted, kept with the reason and its original bytes.
//! - [`text::printable`]: a field's text made safe to show on a terminal, in chat, e-mail or HTML.
//! - [`escape_invalid_utf8`]: `event.original` of a line that is not valid UTF-8, every byte kept.
//!
//! The JSON Schemas and ClickHouse DDL live beside this crate (`schemas/json`, `schemas/clickhouse`) and are
//! embedded here so the binary carries exactly the schema it was tested with.

pub mod audit;
mod columns;
mod event;
#[cfg(test)]
mod fuzz;
mod ids;
mod original;
mod quarantine;
mod signal;
mod tenant;
pub mod text;
pub mod time;

pub use columns::{events_schema, EventColumns, EventRef, EventRows, EVENT_COLUMNS};
pub use event::{Category, Event, Outcome};
pub use ids::{event_id, event_id_into, hex_digest, hex_digest_plain};
pub use original::{decode_escaped, escape_invalid_utf8};
pub use quarantine::{QuarantineReason, Quarantined};
pub use signal::{AppliedOverride, MitreTechnique, RiskFactor, Severity, Signal};
pub use tenant::{TenantError, TenantId};

/// ClickHouse DDL migrations, in the order they must be applied: (version, name, SQL).
///
/// Each file holds one statement per `;`-terminated block. Applied versions are recorded in the
/// `schema_migrations` table, so each runs once; the statements are idempotent anyway (`IF NOT EXISTS`,
/// id-keyed states), so two instances migrating at the same moment do no harm.
pub const CLICKHOUSE_MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "001_events_signals",
        include_str!("../clickhouse/001_events_signals.sql"),
    ),
    (
        2,
        "002_signal_overrides",
        include_str!("../clickhouse/002_signal_overrides.sql"),
    ),
    (
        3,
        "003_quarantine_rollups",
        include_str!("../clickhouse/003_quarantine_rollups.sql"),
    ),
    (4, "004_audit", include_str!("../clickhouse/004_audit.sql")),
];

/// Per-tenant read-only access in ClickHouse (role, grants, row policies, user), as a template:
/// `{db}`, `{tenant}` and `{password_sha256}` are filled in by `sentra migrate --tenant-access`.
pub const CLICKHOUSE_TENANT_ACCESS: &str = include_str!("../clickhouse/tenant_access.sql");

/// JSON Schema of one normalized event as `sentra normalize` prints it.
pub const EVENT_JSON_SCHEMA: &str = include_str!("../json/event.schema.json");
/// JSON Schema of the envelope POSTed to SOAR webhooks (the contract SOAR stories depend on).
pub const SOAR_ENVELOPE_JSON_SCHEMA: &str = include_str!("../json/soar_envelope.schema.json");
/// JSON Schema of one signal as `sentra replay` prints it.
pub const SIGNAL_JSON_SCHEMA: &str = include_str!("../json/signal.schema.json");
