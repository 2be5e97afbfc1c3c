#!/usr/bin/env bash
# Alternating A/B runs of two (or more) builds of the exchange on the same machine, as the
# developers' guide asks: each round starts a fresh exchange of each build in turn, drives it
# with the same load generator, prints one line per run, and stops it.
#
# usage: bench/ab.sh ROUNDS "EXCHANGE FLAGS" "LOADGEN FLAGS" LOADGEN DIR...
#   each DIR holds an `exchange` binary (for example a copy of target/release/ of each build);
#   LOADGEN is the one load generator every build is driven with.
# example: bench/ab.sh 4 "--shards 1" "--clients 64" /tmp/before/loadgen /tmp/before /tmp/after
set -euo pipefail
rounds=$1 xflags=$2 lflags=$3 loadgen=$4
shift 4
for _ in $(seq 1 "$rounds"); do
    for build in "$@"; do
        dir=$(mktemp -d /tmp/exchange-ab.XXXXXX)
        # shellcheck disable=SC2086
        "$build/exchange" --listen 127.0.0.1:0 --data-dir "$dir" --log warn $xflags >"$dir/out" 2>"$dir/err" &
        pid=$!
        for _ in $(seq 1 100); do grep -q listening "$dir/out" && break; sleep 0.1; done
        url=$(awk '/listening/ {print $NF}' "$dir/out")
        # shellcheck disable=SC2086
        "$loadgen" --url "$url" --admin-key-file "$dir/admin-key.json" --quiet --duration 10 \
            --json "$dir/summary.json" $lflags >/dev/null 2>&1 || true
        # The exchange's CPU time (user + system, clock ticks) over its whole life so far: with
        # the orders accepted, CPU per order, steadier than throughput on a shared machine.
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        python3 - "$build" "$dir/summary.json" "$ticks" "$(getconf CLK_TCK)" <<'PY'
import json, sys
build, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    s = json.load(open(path))
except OSError:
    print(build, "no summary")
    sys.exit()
l, c = s["latency_ms"], s["conservation"]
cpu = ticks / hz * 1e6 / max(s["accepted"], 1)
print(f"{build} {s['orders_per_s']:.0f} orders/s p50 {l['p50']:.2f} p99 {l['p99']:.2f} ms"
      f" exchange CPU {cpu:.1f} us/order"
      f" conserved {c['assets_checked'] - len(c['differences'])}/{c['assets_checked']}")
PY
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$dir"
    done
done
