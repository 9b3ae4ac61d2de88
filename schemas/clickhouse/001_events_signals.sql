-- Sentra ClickHouse schema, version 1: normalized events and signals.
-- Idempotent: every statement is IF NOT EXISTS. Tenant leads every sort key so per-tenant reads are
-- range scans, and ReplacingMergeTree keyed by the stable ids makes replays idempotent
-- (read with FINAL, or GROUP BY the id, for exact counts before background merges).

CREATE TABLE IF NOT EXISTS events
(
    tenant         LowCardinality(String),
    timestamp      DateTime64(6, 'UTC'),
    event_id       String,
    host           LowCardinality(String),
    process_name   LowCardinality(String),
    process_pid    Nullable(UInt32),
    dataset        LowCardinality(String),
    category       LowCardinality(String),
    event_type     LowCardinality(String),
    action         LowCardinality(String),
    outcome        LowCardinality(String),
    user_name      String,
    target_user    String,
    group_name     String,
    source_ip      String,
    source_port    Nullable(UInt16),
    auth_method    LowCardinality(String),
    command        String,
    message        String,
    original       String,
    source         String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, timestamp, event_id);

CREATE TABLE IF NOT EXISTS signals
(
    tenant         LowCardinality(String),
    signal_id      String,
    signal         LowCardinality(String),
    window_start   DateTime64(6, 'UTC'),
    window_end     DateTime64(6, 'UTC'),
    severity       LowCardinality(String),
    risk_score     Float64,
    count          UInt64,
    user_name      String,
    source_ip      String,
    hosts          Array(String),
    mitre          Array(String),
    compliance     Array(String),
    intent         LowCardinality(String),
    narrative      String,
    recommendation String,
    evidence       Array(String),
    doc            String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant, signal_id);
