#!/usr/bin/env python3
"""Runs the standard benchmark scenarios and rewrites the README's performance table.

Usage: python3 bench/table.py [--quick]

Scenarios: the engine micro-benchmark (cargo bench -p exchange-core); the embedded exchange
over REST with 1, 2 and 4 shards (closed loop, verified), open loop at the seed's 10,000
orders/s, HTTP/2; the cluster (`exchange shard` and `exchange gateway` processes over a local
Redis Cluster, started by infra/cluster.sh) with 1, 2 and 4 shards; WebSocket fan-out to 10,000
subscribers; the settle and rollup workers. Each exchange scenario starts a fresh exchange in a
temporary data directory and stops it afterwards. The table between the `perf-table` markers in
README.md is replaced, with the machine's details and the command of each row. (`--quick` runs
each scenario briefly, to check the script itself.)
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- perf-table:begin -->", "<!-- perf-table:end -->"
QUICK = "--quick" in sys.argv
DURATION = 2 if QUICK else 10
TARGET = os.path.join(ROOT, "target", "release")


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=True, text=True, **kw)


class Exchange:
    """A fresh exchange on a free port in a temporary data directory."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="exchange-bench-")
        self.proc = subprocess.Popen(
            [os.path.join(TARGET, "exchange"), "--listen", "127.0.0.1:0", "--data-dir",
             self.dir, "--log", "warn", *flags],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            if line.startswith("exchange listening on "):
                self.url = line.split()[-1]
                break
        else:
            raise RuntimeError("the exchange did not start")
        self.key = os.path.join(self.dir, "admin-key.json")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        subprocess.run(["rm", "-rf", self.dir], check=False)


class Cluster:
    """A fresh local cluster (infra/cluster.sh) on its own Redis ports and run directory."""

    def __init__(self, shards, gateways):
        self.dir = tempfile.mkdtemp(prefix="exchange-cluster-bench-")
        self.env = dict(os.environ, EXCHANGE_CLUSTER_DIR=self.dir,
                        EXCHANGE_REDIS_CLUSTER_PORT="7200",
                        EXCHANGE_REDIS_CLUSTER_DIR=os.path.join(self.dir, "redis"),
                        EXCHANGE_GATEWAY_PORT="18180",
                        EXCHANGE_BIN=os.path.join(TARGET, "exchange"))
        out = run(["infra/cluster.sh", "up", str(shards), str(gateways)], env=self.env,
                  capture_output=True).stdout
        self.urls = [l.split()[-1] for l in out.splitlines() if l.startswith("gateway-")]
        self.url = self.urls[0]
        self.key = os.path.join(self.dir, "data", "admin-key.json")

    def stop(self):
        run(["infra/cluster.sh", "down"], env=self.env)


def loadgen(ex, *flags):
    out = os.path.join(ex.dir, "summary.json")
    urls = [a for u in getattr(ex, "urls", [ex.url]) for a in ("--url", u)]
    run([os.path.join(TARGET, "loadgen"), *urls, "--admin-key-file", ex.key,
         "--quiet", "--duration", str(DURATION), "--json", out, *flags])
    with open(out) as f:
        return json.load(f)


def ms(v):
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def latency(l):
    return (f"p50 {ms(l['p50'])}, p90 {ms(l['p90'])}, p99 {ms(l['p99'])}, "
            f"p99.9 {ms(l['p999'])}, max {ms(l['max'])}")


def rest_row(title, s, command):
    v = s.get("verification")
    checked = f"; verified {v['checked']:,} orders, {v['mismatches']} mismatches" if v else ""
    md = s.get("market_data_latency_ms")
    if md:
        checked += (f"; acceptance to the trade on a WebSocket subscriber p50 {ms(md['p50'])},"
                    f" p99 {ms(md['p99'])}, p99.9 {ms(md['p999'])}")
    outcomes = s.get("outcomes", {})
    if set(outcomes) - {"201"}:
        checked += "; answers " + ", ".join(f"{k}: {v:,}" for k, v in sorted(outcomes.items()))
    cons = s["conservation"]
    conserved = (f"; balances conserved in {cons['assets_checked'] - len(cons['differences'])}"
                 f" of {cons['assets_checked']} assets")
    unit = "operations/s" if "200" in s.get("outcomes", {}) else "orders/s"
    return (f"| {title} | **{s['orders_per_s']:,.0f} {unit}**; {latency(s['latency_ms'])}"
            f"{checked}{conserved} | `{command}` |")


def engine_rows():
    out = run(["cargo", "bench", "-p", "exchange-core", "--bench", "engine"],
              capture_output=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"(standard book|book of 10k|deep book)[^:]*: (.*)", line)
        if m:
            rows.append(f"| engine, exchange-core's benchmark mix, {line.split(':')[0]}, one core"
                        f" | {m.group(2).split(' | ', 1)[1].replace(' | ', '; ')} | `cargo bench -p exchange-core` |")
        elif line.startswith("memory:"):
            rows.append(f"| engine memory: {line[len('memory: '):]} | | `cargo bench -p exchange-core` |")
    return rows


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return (f"Measured on {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {time.strftime('%Y-%m-%d')},"
            " by `python3 bench/table.py` (which rewrites this table). In the commands, `exchange`"
            " is `cargo run --release --`, and `loadgen`, `wsfanout` and `historybench` are `cargo run --release"
            " -p exchange-bench --bin loadgen --` (or `wsfanout`, `historybench`), each scenario on a fresh"
            " exchange; the load generators run on the same cores.")


def main():
    run(["cargo", "build", "--release", "-p", "exchange", "-p", "exchange-bench"])
    rows = [] if QUICK else engine_rows()
    for shards in (1, 2, 4):
        ex = Exchange("--shards", str(shards), "--retain-finished", "1000000")
        try:
            s = loadgen(ex, "--clients", "64", "--verify")
        finally:
            ex.stop()
        rows.append(rest_row(
            f"embedded exchange over REST, {shards} shard{'s' if shards > 1 else ''}, HTTP/1.1,"
            " 64 clients, signed limit orders from 100 funded accounts on 3 symbols, fsync on",
            s, f"exchange --shards {shards} --retain-finished 1000000`, then `loadgen --clients 64"
               f" --duration {DURATION} --verify"))
    for title, flags, exflags in [
        ("embedded exchange over REST, 1 shard, HTTP/1.1, 64 clients, the same orders, not"
         " verified (the capacity; settlement and rollup run as idle work beside it)",
         ["--clients", "64"], ["--shards", "1"]),
        ("the same (1 shard, not verified), 32 clients", ["--clients", "32"], ["--shards", "1"]),
        ("the same (1 shard, not verified, 64 clients) with the request worker on a CPU of its"
         " own (`--pin-workers`) and the load generator on the other (`--cpus 1`)",
         ["--clients", "64", "--cpus", "1"], ["--shards", "1", "--pin-workers"]),
        ("the same (1 shard, pinned), open loop at 30,000 orders/s offered",
         ["--clients", "128", "--rate", "30000", "--cpus", "1"], ["--shards", "1", "--pin-workers"]),
        ("the same (1 shard, pinned), open loop at the target's 50,000 orders/s offered (latency"
         " counts from when each order was due)",
         ["--clients", "256", "--rate", "50000", "--cpus", "1"], ["--shards", "1", "--pin-workers"]),
        ("the same (2 shards), open loop at the seed's 10,000 orders/s",
         ["--clients", "128", "--rate", "10000"], []),
        ("the same (2 shards) over HTTP/2", ["--clients", "64", "--http2"], []),
        ("the same (2 shards), orders over WebSocket, with 4 WebSocket subscribers to the trades",
         ["--clients", "64", "--websocket", "--md-subscribers", "4"], ["--ws-message-rate", "0"]),
        ("market making (`--workload mm`, exchange-core's mix: 82% re-quotes, 9% quotes, 3% IOC,"
         " 6% cancels) on BTC-USD and ETH-USD, 2 shards; a re-quote or cancel of a quote filled"
         " meanwhile answers 404",
         ["--clients", "64", "--workload", "mm", "--symbol", "BTC-USD=65000", "--symbol",
          "ETH-USD=3000", "--verify"], ["--retain-finished", "1000000"]),
    ]:
        ex = Exchange(*exflags)
        try:
            s = loadgen(ex, *flags)
        finally:
            ex.stop()
        rows.append(rest_row(title, s, " ".join(["exchange", *exflags]) + "`, then `loadgen "
                             + " ".join(flags) + f" --duration {DURATION}"))
    for shards, gateways in ((1, 1), (2, 1), (4, 1), (2, 2)):
        cl = Cluster(shards, gateways)
        try:
            s = loadgen(cl, "--clients", "64", "--verify", "--md-subscribers", "2")
        finally:
            cl.stop()
        rows.append(rest_row(
            f"cluster: {shards} `exchange shard` process{'es' if shards > 1 else ''},"
            f" {gateways} `exchange gateway` process{'es' if gateways > 1 else ''}, local Redis"
            " Cluster (3 masters + 3 replicas, AOF fsync always), 64 clients, the same orders",
            s, f"infra/cluster.sh up {shards} {gateways}`, then `loadgen"
               + "".join(f" --url http://127.0.0.1:{18180 + g}" for g in range(gateways))
               + f" --admin-key-file RUN_DIR/data/admin-key.json --clients 64"
               f" --duration {DURATION} --verify --md-subscribers 2"))
    subscribers = 1000 if QUICK else 10000
    ex = Exchange()
    try:
        out = os.path.join(ex.dir, "fanout.json")
        run([os.path.join(TARGET, "wsfanout"), "--url", ex.url, "--admin-key-file", ex.key,
             "--subscribers", str(subscribers), "--rate", "2", "--duration", str(DURATION),
             "--server-pid", str(ex.proc.pid), "--json", out])
        f = json.load(open(out))
    finally:
        ex.stop()
    mem = f.get("server_kib_per_idle_connection")
    rows.append(
        f"| WebSocket fan-out: {f['subscribers']:,} subscribers to BTC-USD's book and trades,"
        f" 2 orders/s, subscribers on the same cores | acceptance to receipt"
        f" {latency(f['latency_ms'])}; {f['messages_per_s']:,.0f} messages/s;"
        f" {mem:.1f} KiB server memory per idle connection; {f['dropped']} dropped |"
        f" `exchange`, then `wsfanout --subscribers {subscribers} --rate 2 --duration {DURATION}"
        " --server-pid PID` |")
    trades = 100_000 if QUICK else 1_000_000
    out = subprocess.run([os.path.join(TARGET, "historybench"), "--trades", str(trades),
                          "--seconds", str(DURATION)],
                         check=True, capture_output=True, text=True).stdout
    print(out)
    for prefix, label in (("rollup -> PostgreSQL", "rollup into PostgreSQL (plain, this machine's"
                           " server): trades, then candles of 6 intervals, upserted"),
                          ("settle -> embedded store", "settle into the embedded store (SQLite):"
                           " trades, order states, ledger entries with fees and their balances")):
        lines = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith(prefix)]
        rows.append(f"| {label}, through the worker from an event journal holding each trade as a"
                    f" shard writes it (two records: the resting order, then the order that fills"
                    f" it with the trade and both sides' fills) | {'; '.join(lines)} |"
                    f" `historybench --trades {trades} --seconds {DURATION}` |")
    table = "\n".join([
        machine(), "",
        "| scenario | figure | command |", "|---|---|---|", *rows,
    ])
    text = open(README).read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(README, "w").write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(table)


if __name__ == "__main__":
    main()
