-- Sentra ClickHouse schema, version 4: the audit trail.
--
-- Append-only: one row per chained record (see `sentra_schemas::audit`), never updated or merged away
-- (plain MergeTree). `sentra audit verify` recomputes each tenant's hash chain in seq order and names the
-- first record that was edited, removed or reordered.

CREATE TABLE IF NOT EXISTS audit
(
    tenant         LowCardinality(String),
    seq            UInt64,
    record_id      String,
    at             DateTime64(6, 'UTC'),
    actor          String,
    action         LowCardinality(String),
    subject        String,
    details        String,
    prev_hash      String,
    hash           String
)
ENGINE = MergeTree
ORDER BY (tenant, seq);
