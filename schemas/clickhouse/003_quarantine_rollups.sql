-- Sentra ClickHouse schema, version 3: the quarantine table and the dashboard rollups.
--
-- Rollups are AggregatingMergeTree tables fed by materialized views, holding uniqExact states of the stable
-- ids rather than plain counts: a replayed or re-delivered event adds the same id to the same group again,
-- so the rollups stay exact under replay (a SummingMergeTree of counts would double-count). Dashboards read
-- the plain views (`events_per_minute`, `signals_per_day`), which merge the states.

CREATE TABLE IF NOT EXISTS quarantine
(
    tenant         LowCardinality(String),
    quarantine_id  String,
    received_at    DateTime64(6, 'UTC'),
    reason         LowCardinality(String),
    detail         String,
    source         String,
    original       String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, reason, quarantine_id);

CREATE TABLE IF NOT EXISTS events_per_minute_state
(
    tenant         LowCardinality(String),
    minute         DateTime('UTC'),
    host           LowCardinality(String),
    category       LowCardinality(String),
    action         LowCardinality(String),
    outcome        LowCardinality(String),
    events         AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant, minute, host, category, action, outcome);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_mv TO events_per_minute_state AS
SELECT tenant, toStartOfMinute(timestamp) AS minute, host, category, action, outcome,
       uniqExactState(event_id) AS events
FROM events
GROUP BY tenant, minute, host, category, action, outcome;

-- Events stored before this migration (the view only sees new inserts). Safe to repeat: states of ids.
INSERT INTO events_per_minute_state
SELECT tenant, toStartOfMinute(timestamp) AS minute, host, category, action, outcome,
       uniqExactState(event_id) AS events
FROM events
GROUP BY tenant, minute, host, category, action, outcome;

CREATE VIEW IF NOT EXISTS events_per_minute AS
SELECT tenant, minute, host, category, action, outcome, uniqExactMerge(events) AS events
FROM events_per_minute_state
GROUP BY tenant, minute, host, category, action, outcome;

CREATE TABLE IF NOT EXISTS signals_per_day_state
(
    tenant         LowCardinality(String),
    day            Date,
    signal         LowCardinality(String),
    severity       LowCardinality(String),
    signals        AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, signal, severity);

CREATE MATERIALIZED VIEW IF NOT EXISTS signals_per_day_mv TO signals_per_day_state AS
SELECT tenant, toDate(window_start) AS day, signal, severity, uniqExactState(signal_id) AS signals
FROM signals
GROUP BY tenant, day, signal, severity;

INSERT INTO signals_per_day_state
SELECT tenant, toDate(window_start) AS day, signal, severity, uniqExactState(signal_id) AS signals
FROM signals
GROUP BY tenant, day, signal, severity;

CREATE VIEW IF NOT EXISTS signals_per_day AS
SELECT tenant, day, signal, severity, uniqExactMerge(signals) AS signals
FROM signals_per_day_state
GROUP BY tenant, day, signal, severity;
