#!/usr/bin/env bash
# SPEC §7: `xone sync` from Jira: the first sync of 1,000 issues in pages of at least 100, an
# incremental sync of 10 changed issues in at most 3 requests (examples/bench_sync.rs, against
# the tests' fake Jira, Server and Cloud).
#
#   benches/sync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo build --release --quiet --example bench_sync
XONE=$PWD/target/release/xone target/release/examples/bench_sync
