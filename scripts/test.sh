#!/usr/bin/env bash
# The exchange's whole test run: formatting, lints, and every test of every crate.
# This is the README's test command, and exactly what CI runs (.ci/run calls it).
#
# It installs and starts what the tests need by itself, so it passes on a fresh machine with
# no standard input (CI=true). Tests that need a server this machine cannot have (MongoDB,
# TimescaleDB) run when their URL is set and say plainly that they were skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "Node.js, the dashboard's packages and Chromium (dashboard/)"
# Node.js 20.9+ builds the dashboard (Next.js 16); Debian's chromium runs its browser test.
node_ok() { command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=9)?0:1)'; }
node_ok || { echo "Node.js 20.9 or newer is needed to build and test the dashboard" >&2; exit 1; }
sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
if [ ! -x /usr/bin/chromium ]; then
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q chromium >/dev/null ||
        { $sudo_ apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q chromium >/dev/null; }
fi
export NEXT_TELEMETRY_DISABLED=1
(cd dashboard && npm ci --no-audit --no-fund && npm run build)
# The exchange's build embeds what was just built; the test below checks that it did.
export EXCHANGE_DASHBOARD_REQUIRED=1

step "dashboard unit tests (Vitest)"
(cd dashboard && npm test)

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL for the rollup store's tests (127.0.0.1:5432)"
# The machine runs PostgreSQL; start it if it stopped, install it if it is missing.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null; then
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -q postgresql >/dev/null
    fi
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up && echo "PostgreSQL is up" || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

step "a local Redis Cluster for the cluster adapters' tests (infra/redis-cluster.sh)"
infra/redis-cluster.sh up
trap 'infra/redis-cluster.sh down >/dev/null 2>&1 || true' EXIT
export EXCHANGE_TEST_REDIS_CLUSTER_URL="redis://127.0.0.1:${EXCHANGE_REDIS_CLUSTER_PORT:-7100}"

skipped() {
    [ -n "${EXCHANGE_MONGODB_URL:-}" ] ||
        echo "SKIPPED: MongoDB settlement tests (no server here; set EXCHANGE_MONGODB_URL to run them)"
    [ -n "${EXCHANGE_DATABASE_URL:-}" ] ||
        echo "SKIPPED: TimescaleDB hypertable test (set EXCHANGE_DATABASE_URL to a Timescale-enabled server to run it)"
}
skipped

step "cargo test (optimised: the property tests run long random sequences)"
cargo test --workspace --profile ci --locked

step "dashboard browser test (chromium against target/ci/exchange; screenshots in target/dashboard-e2e)"
(cd dashboard && EXCHANGE_BIN=../target/ci/exchange npm run e2e)
ls target/dashboard-e2e

step "npm run dev against the exchange (the dev server proxies the API and the WebSocket)"
(cd dashboard && EXCHANGE_BIN=../target/ci/exchange npm run e2e:dev)

step "done"
skipped
