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

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (optimised: the property tests run long random sequences)"
cargo test --workspace --profile ci --locked
