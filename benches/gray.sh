#!/usr/bin/env bash
# SPEC §7: `xone gray status` with the seven built-in analyses within 300 ms, against a real
# Prometheus that scripts/services starts and the tests' fake Kubernetes API server
# (examples/bench_gray.rs); also counts the requests one status makes.
#
#   benches/gray.sh            # root, like scripts/test; 20 runs
#   RUNS=50 benches/gray.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
cargo build --release --quiet
cargo build --release --quiet --example bench_gray
. "$here/../scripts/setup"
. "$here/../scripts/services"
XONE=$PWD/target/release/xone target/release/examples/bench_gray "${RUNS:-20}"
