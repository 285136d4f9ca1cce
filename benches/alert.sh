#!/usr/bin/env bash
# SPEC §7: acting on a firing alert in the release watch (rollback started within 5 s of the
# alert firing), measured against a real Prometheus that scripts/services starts, with the
# tests' fake Kubernetes API server (examples/bench_alert.rs).
#
#   benches/alert.sh            # root, like scripts/test; 5 runs
#   RUNS=10 benches/alert.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
cargo build --release --quiet
cargo build --release --quiet --example bench_alert
. "$here/../scripts/setup"
. "$here/../scripts/services"
XONE=$PWD/target/release/xone target/release/examples/bench_alert "${RUNS:-5}"
