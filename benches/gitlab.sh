#!/usr/bin/env bash
# SPEC §7: `branch create` for one requirement across 20 repositories against a GitLab that
# answers each request in 50 ms must finish its network phase within 1.5 × one request's
# latency. Runs the tests' fake GitLab (examples/fake_gitlab.rs) twice, with 50 ms and with
# no added latency; the difference between the two wall times is what the latency cost.
#
#   benches/gitlab.sh              # 20 repositories, 50 ms
#   REPOS=40 LATENCY=100 benches/gitlab.sh
#
# Needs hyperfine (apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
REPOS=${REPOS:-20}
LATENCY=${LATENCY:-50}
RUNS=${RUNS:-15}
command -v hyperfine >/dev/null ||
  { echo "benches/gitlab.sh needs hyperfine: apt-get install hyperfine" >&2; exit 2; }
cargo build --release --quiet
cargo build --release --quiet --example fake_gitlab
xone=$PWD/target/release/xone
fake=$PWD/target/release/examples/fake_gitlab
scratch=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT

# Writes to $scratch/lat$1/mean the mean wall time in ms of `branch create` against a fake
# answering in $1 ms.
measure() {
  local latency=$1 dir=$scratch/lat$1
  mkdir -p "$dir/home"
  "$fake" --projects "$REPOS" --latency-ms "$latency" --token glpat-bench --root "$dir/gitlab" \
    >"$dir/url" 2>"$dir/fake.log" </dev/null &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$dir/url" ] && break; sleep 0.1; done
  local url
  url=$(head -n 1 "$dir/url")
  export HOME=$dir/home XONE_HOME=$dir/state XONE_USER=bench CI=1
  export XONE_GITLAB_URL=$url XONE_GITLAB_TOKEN=glpat-bench
  local repos=()
  for i in $(seq "$REPOS"); do repos+=(--repo "gitlab:bench/r$i"); done
  "$xone" project create GL --name Bench "${repos[@]}" >/dev/null 2>&1
  "$xone" requirement create -p GL "Fan out" >/dev/null 2>&1
  "$xone" branch create GL-1 >/dev/null 2>&1
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$dir/h.json" \
    --prepare "$xone branch delete GL-1 --yes --force" \
    "$xone branch create GL-1" >/dev/null 2>&1
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"]*1000)' \
    "$dir/h.json" >"$dir/mean"
}

measure "$LATENCY"
measure 0
slow=$(cat "$scratch/lat$LATENCY/mean")
fast=$(cat "$scratch/lat0/mean")
python3 - "$slow" "$fast" "$LATENCY" "$REPOS" <<'PY'
import sys
slow, fast, latency, repos = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
network = slow - fast
budget = 1.5 * latency
print(f"\n| branch create across {repos} repositories | ms |\n|---|---:|")
print(f"| one request's latency | {latency:.0f} |")
print(f"| sequential cost ({repos} × {latency:.0f} ms) | {repos * latency:.0f} |")
print(f"| xone, server answering in {latency:.0f} ms (wall) | {slow:.1f} |")
print(f"| xone, server answering at once (wall) | {fast:.1f} |")
print(f"| network phase added by the latency | {network:.1f} |")
print(f"| budget: 1.5 × one request | {budget:.0f} | {'within' if network <= budget else 'OVER'} |")
PY
