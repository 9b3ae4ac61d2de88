-- Sentra ClickHouse schema, version 2: analyst overrides on signals (suppressed signals are kept, marked).

ALTER TABLE signals ADD COLUMN IF NOT EXISTS suppressed Bool DEFAULT false;

ALTER TABLE signals ADD COLUMN IF NOT EXISTS override_id String DEFAULT '';

ALTER TABLE signals ADD COLUMN IF NOT EXISTS override_reason String DEFAULT '';
