#!/usr/bin/env bash
# SPEC §7: noticing that a rollout completed within 100 ms of the API server reporting it,
# and the API requests one rollout costs (watches, not a poll loop). Runs `xone deploy` RUNS
# times against the tests' fake Kubernetes API server (examples/bench_rollout.rs) and prints
# a table.
#
#   benches/rollout.sh          # 10 rollouts
#   RUNS=30 benches/rollout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo build --release --quiet --example bench_rollout
XONE=$PWD/target/release/xone target/release/examples/bench_rollout "${RUNS:-10}"
