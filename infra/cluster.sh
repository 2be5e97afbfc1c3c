#!/usr/bin/env bash
# The whole exchange as a cluster on this machine: a local Redis Cluster (infra/redis-cluster.sh),
# SHARDS `exchange shard` processes and GATEWAYS `exchange gateway` processes, each its own
# process with its own log file, sharing one data directory (so they share the master key, the
# admin key file and the embedded history store; set EXCHANGE_DATABASE_URL / EXCHANGE_MONGODB_URL
# to use PostgreSQL / MongoDB instead).
#
#   infra/cluster.sh up [SHARDS] [GATEWAYS]   start (default 2 shards, 1 gateway); prints the URLs
#   infra/cluster.sh down                     stop every process (SIGTERM: each drains) and the
#                                             Redis Cluster, and delete the data
#   infra/cluster.sh status                   what runs
#
# Gateways listen on 127.0.0.1:PORT, PORT+1, ... (PORT: EXCHANGE_GATEWAY_PORT, default 8080);
# shards serve /health and /metrics on ports the OS picks (see status). The binary is
# EXCHANGE_BIN (default target/release/exchange, built if missing); the run directory is
# EXCHANGE_CLUSTER_DIR (default ${TMPDIR:-/tmp}/exchange-cluster).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${EXCHANGE_CLUSTER_DIR:-${TMPDIR:-/tmp}/exchange-cluster}"
BIN="${EXCHANGE_BIN:-$ROOT/target/release/exchange}"
PORT="${EXCHANGE_GATEWAY_PORT:-8080}"
REDIS_PORT="${EXCHANGE_REDIS_CLUSTER_PORT:-7100}"
# Every node as a seed, so a process that reconnects while a master is down finds the others.
EXCHANGE_REDIS_URL="$(for p in $(seq "$REDIS_PORT" $((REDIS_PORT + 5))); do printf 'redis://127.0.0.1:%s,' "$p"; done)"
export EXCHANGE_REDIS_URL="${EXCHANGE_REDIS_URL%,}"

# Starts one process in the background and waits for its "listening on" line.
start() {
    local name="$1"
    shift
    "$BIN" --data-dir "$DIR/data" --log "${EXCHANGE_LOG:-warn}" "$@" >"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
    for _ in $(seq 1 300); do
        if grep -q "listening on" "$DIR/$name.log"; then
            grep -o "listening on .*" "$DIR/$name.log" | head -1 | sed "s/^/$name /"
            return
        fi
        kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not start; its log:" >&2
    cat "$DIR/$name.log" >&2
    exit 1
}

up() {
    local shards="${1:-2}" gateways="${2:-1}"
    [ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p exchange)
    "$ROOT/infra/redis-cluster.sh" up
    mkdir -p "$DIR/data"
    for i in $(seq 0 $((shards - 1))); do
        start "shard-$i" --shards "$shards" --listen 127.0.0.1:0 shard --id "$i"
    done
    # The first gateway creates the admin key (and the master key) before the others start.
    for i in $(seq 0 $((gateways - 1))); do
        start "gateway-$i" --shards "$shards" --listen "127.0.0.1:$((PORT + i))" gateway
    done
    echo "admin key: $DIR/data/admin-key.json"
}

stop_all() {
    local pidfile pid
    # Gateways first (no new commands), then the shards (each drains its log).
    for pidfile in "$DIR"/gateway-*.pid "$DIR"/shard-*.pid; do
        [ -e "$pidfile" ] || continue
        pid="$(cat "$pidfile")"
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

case "${1:-}" in
up)
    shift
    up "$@"
    ;;
down)
    stop_all
    "$ROOT/infra/redis-cluster.sh" down
    rm -rf "$DIR"
    ;;
status)
    for pidfile in "$DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        name="$(basename "$pidfile" .pid)"
        state=stopped
        kill -0 "$(cat "$pidfile")" 2>/dev/null && state=running
        echo "$name $state $(grep -o 'listening on .*' "$DIR/$name.log" | head -1)"
    done
    "$ROOT/infra/redis-cluster.sh" status | head -3
    ;;
*)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
