#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install and start the local services (Kafka via Tansu,
# ClickHouse via chDB, the Elasticsearch API via osmem) on 127.0.0.1, check formatting and lints, run every
# Rust test, and stop the services again. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build outputs live outside the clone so fresh clones (CI) reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sentra-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*" >&2; }

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "services up"
services_env="$(bash scripts/services.sh up)"
eval "$services_env"
trap 'step "services down"; bash scripts/services.sh down || true' EXIT

step "ClickHouse front end self-test"
bash scripts/services.sh selftest

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (cargo test)"
cargo test --workspace --locked --no-fail-fast
