#!/usr/bin/env bash
# A local Redis Cluster for development and the tests: three masters, each with a replica, on
# 127.0.0.1 ports BASE..BASE+5 (default 7100..7105), data under DIR (default
# ${TMPDIR:-/tmp}/exchange-redis-cluster). Append-only files are fsynced every write, so an
# acknowledged append survives a restart of the node.
#
#   infra/redis-cluster.sh up      start the nodes and form the cluster (idempotent)
#   infra/redis-cluster.sh down    stop the nodes and delete their data
#   infra/redis-cluster.sh status  the cluster's view of itself
#
# Needs redis-server and redis-cli 7 or later (Debian's redis-server package); on a machine
# without them, `up` installs it with apt-get.
set -euo pipefail

BASE="${EXCHANGE_REDIS_CLUSTER_PORT:-7100}"
DIR="${EXCHANGE_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/exchange-redis-cluster}"
PORTS=$(seq "$BASE" $((BASE + 5)))

need_redis() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
    echo "installing redis-server (Debian package)"
    local sudo_=""
    [ "$(id -u)" = 0 ] || sudo_="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q redis-server >/dev/null
}

ping() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

up() {
    need_redis
    mkdir -p "$DIR"
    for p in $PORTS; do
        ping "$p" && continue
        mkdir -p "$DIR/$p"
        redis-server --port "$p" --bind 127.0.0.1 --daemonize yes \
            --dir "$DIR/$p" --logfile "$DIR/$p/redis.log" --pidfile "$DIR/$p/redis.pid" \
            --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
            --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save ""
    done
    for p in $PORTS; do
        for _ in $(seq 1 50); do ping "$p" && break; sleep 0.1; done
        ping "$p" || { echo "redis on port $p did not start; see $DIR/$p/redis.log" >&2; exit 1; }
    done
    if ! redis-cli -h 127.0.0.1 -p "$BASE" cluster info | grep -q cluster_state:ok; then
        if [ "$(redis-cli -h 127.0.0.1 -p "$BASE" cluster info | grep cluster_known_nodes | tr -dc 0-9)" = 1 ]; then
            # shellcheck disable=SC2046
            redis-cli --cluster create $(for p in $PORTS; do printf '127.0.0.1:%s ' "$p"; done) \
                --cluster-replicas 1 --cluster-yes >/dev/null
        fi
        for _ in $(seq 1 100); do
            redis-cli -h 127.0.0.1 -p "$BASE" cluster info | grep -q cluster_state:ok && break
            sleep 0.1
        done
    fi
    redis-cli -h 127.0.0.1 -p "$BASE" cluster info | grep -q cluster_state:ok ||
        { echo "the cluster did not form" >&2; exit 1; }
    echo "redis cluster up: redis://127.0.0.1:$BASE (ports $BASE-$((BASE + 5)))"
}

down() {
    for p in $PORTS; do
        ping "$p" && redis-cli -h 127.0.0.1 -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    rm -rf "$DIR"
    echo "redis cluster down"
}

status() { redis-cli -h 127.0.0.1 -p "$BASE" cluster nodes; }

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
