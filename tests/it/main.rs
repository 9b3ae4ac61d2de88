//! Sentra's integration tests: one binary, one module per topic.
//!
//! Service tests need the local services started by `scripts/services.sh up` (as `scripts/test.sh` does) and
//! read their addresses from `SENTRA_TEST_KAFKA` and `SENTRA_TEST_CLICKHOUSE_URL`.

mod api;
mod cli;
mod crash;
mod docker;
mod hostile;
mod kafka_clickhouse;
mod outages;
mod playbooks;
mod query;
mod replay;
mod soar;
mod stores;
mod support;
