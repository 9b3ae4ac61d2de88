#!/usr/bin/env bash
# The `sentra run` path, measured: Kafka (Tansu) → normalize → detect → ClickHouse (the chDB front end), on a
# log file. Produces the file's lines to a fresh topic (tenant `acme` by topic), then, once per checkpoint
# interval given, runs `sentra run` with a fresh consumer group and database until ClickHouse holds every line,
# stops it with Ctrl-C and prints the CPU sentra spent (user + system; the services' own CPU is not counted).
#
#   scripts/bench-run.sh FILE [CHECKPOINT_INTERVAL_MS ...]      (default: 0 5000)
#
# To compare builds side by side, BENCH_RUN_BINS="OLD_BINARY NEW_BINARY" runs each (instead of this checkout's
# release build) in turn, BENCH_RUN_REPEAT times (default 1).
# BENCH_RUN_CLICKHOUSE adds lines to the [clickhouse] section, e.g. BENCH_RUN_CLICKHOUSE='compression = "none"'.
# BENCH_RUN_WRAP is put before the sentra command line, e.g. to profile it:
#   BENCH_RUN_WRAP="perf record -q -e cpu-clock -F 999 -o /tmp/run.perf" scripts/bench-run.sh FILE 5000
#
# Uses the local services of scripts/services.sh (started here, stopped at the end) and a release build. The
# wall time to store is the chDB front end's more than sentra's; compare the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 1 && -f "$1" ]] || { echo "usage: scripts/bench-run.sh FILE [CHECKPOINT_INTERVAL_MS ...]" >&2; exit 2; }
file="$(realpath "$1")"
shift
intervals=("$@")
[[ ${#intervals[@]} -gt 0 ]] || intervals=(0 5000)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sentra-target}"
if [[ -n "${BENCH_RUN_BINS:-}" ]]; then
  read -r -a bins <<<"$BENCH_RUN_BINS"
else
  cargo build --release -q -p sentra
  bins=("$CARGO_TARGET_DIR/release/sentra")
fi
eval "$(bash scripts/services.sh up)"
trap 'bash scripts/services.sh down >/dev/null 2>&1 || true' EXIT

# The producer: confluent-kafka (bundles its own librdkafka), pinned, in the services' virtualenv.
py="${SENTRA_SERVICES_HOME:-$HOME/.cache/sentra-services}/venv/bin/python"
"$py" -c 'import confluent_kafka' 2>/dev/null ||
  "$py" -m pip install --disable-pip-version-check -q --no-deps confluent-kafka==2.16.1 >&2
topic="bench-$(date +%s)-$$"
lines="$("$py" - "$SENTRA_TEST_KAFKA" "$topic" "$file" <<'EOF'
import sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
brokers, topic, path = sys.argv[1:4]
admin = AdminClient({"bootstrap.servers": brokers})
for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "queue.buffering.max.messages": 1000000})
n = 0
with open(path, "rb") as f:
    for line in f:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        while True:
            try:
                p.produce(topic, line)
                break
            except BufferError:
                p.poll(0.1)
        n += 1
left = p.flush(60)
assert left == 0, f"{left} messages not delivered"
print(n)
EOF
)"
echo "produced $lines lines of $(basename "$file") to $topic" >&2

stored() {
  curl -s "$SENTRA_TEST_CLICKHOUSE_URL/" --data-binary \
    "SELECT (SELECT count() FROM $1.events) + (SELECT count() FROM $1.quarantine)" 2>/dev/null || true
}

printf '%-24s %22s %10s %8s %15s %16s %12s\n' binary checkpoint_interval_ms lines cpu_s wall_to_store_s \
  lines_per_cpu_s peak_rss_mib
for _ in $(seq "${BENCH_RUN_REPEAT:-1}"); do for bin in "${bins[@]}"; do for interval in "${intervals[@]}"; do
  db="bench_${interval}_$$_$RANDOM"
  dir="$(mktemp -d)"
  cat >"$dir/sentra.toml" <<EOF
[kafka]
brokers = "$SENTRA_TEST_KAFKA"
group_id = "g-$db"
topics = ["$topic"]
[kafka.topic_tenants]
"$topic" = "acme"
[clickhouse]
url = "$SENTRA_TEST_CLICKHOUSE_URL"
database = "$db"
${BENCH_RUN_CLICKHOUSE:-}
[detection]
checkpoint_path = "$dir/checkpoint.json"
checkpoint_interval_ms = $interval
EOF
  SENTRA_LOG=warn /usr/bin/time -f '%U %S %M' -o "$dir/time" ${BENCH_RUN_WRAP:-} "$bin" run --config "$dir/sentra.toml" \
    >"$dir/log" 2>&1 &
  timer=$!
  started=$(date +%s.%N)
  until [[ "$(stored "$db")" =~ ^[0-9]+$ && "$(stored "$db")" -ge "$lines" ]]; do
    kill -0 "$timer" 2>/dev/null || { echo "sentra run stopped early:" >&2; tail -5 "$dir/log" >&2; exit 1; }
    sleep 0.5
  done
  took=$(echo "$(date +%s.%N) - $started" | bc)
  pkill -INT -P "$timer" || true
  wait "$timer" || true
  read -r user sys rss < <(tail -1 "$dir/time")  # after a "terminated by signal" line
  cpu=$(echo "$user + $sys" | bc)
  printf '%-24s %22s %10s %8.2f %15.1f %16.0f %12.0f\n' "$(basename "$bin")" "$interval" "$lines" "$cpu" \
    "$took" "$(echo "$lines / $cpu" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  rm -rf "$dir"
done; done; done
