#!/usr/bin/env bash
# The SPEC §7 budgets for local commands, measured: seeds 10 000 requirements into a scratch
# XONE_HOME, then times `requirement list`, `requirement show KEY --json` and a dynamic
# completion of requirement keys with hyperfine, beside `gh --version` and `git --version` on
# the same machine in the same run, and reads each command's peak memory.
#
#   benches/run.sh            # release build, 10 000 requirements
#   N=2000 benches/run.sh     # fewer rows, for a quick look
#
# Then runs benches/gitlab.sh (branch create across 20 GitLab repositories at 50 ms each) and
# benches/rollout.sh (how soon a completed rollout is noticed, and what it costs in requests).
# Needs hyperfine and GNU time (apt-get install hyperfine time); gh is compared when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
command -v hyperfine >/dev/null && [ -x /usr/bin/time ] ||
  { echo "benches/run.sh needs hyperfine and GNU time: apt-get install hyperfine time" >&2; exit 2; }
cargo build --release --quiet
xone=$PWD/target/release/xone
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
real_home=$HOME
export HOME=$scratch/home XONE_HOME=$scratch/state XONE_USER=bench CI=1
mkdir -p "$HOME"

echo "seeding $N requirements ..." >&2
"$xone" project create BENCH --name Bench >/dev/null 2>&1
seq 1 "$N" | xargs -P 4 -I{} "$xone" requirement create -p BENCH "Requirement number {} of the benchmark" >/dev/null 2>&1
"$xone" requirement assign BENCH-1 pm=bench qa=bench >/dev/null 2>&1
count=$("$xone" requirement list --all --json | grep -c '"key"')
[ "$count" = "$N" ] || { echo "seeded $count, not $N" >&2; exit 1; }

# name | command | budget in ms (0: a reference, no budget)
cases=(
  "requirement list|$xone requirement list|5"
  "requirement list --all ($N rows)|$xone requirement list --all|0"
  "requirement show BENCH-1 --json|$xone requirement show BENCH-1 --json|5"
  "completion BENCH-12<TAB> (bash)|env COMPLETE=bash _CLAP_COMPLETE_INDEX=3 _CLAP_COMPLETE_COMP_TYPE=9 _CLAP_COMPLETE_SPACE=true $xone -- xone requirement show BENCH-12|10"
  "completion BENCH-12<TAB> (fish, with titles)|env COMPLETE=fish $xone -- xone requirement show BENCH-12|10"
  "completion BENCH-<TAB>, all $N keys (bash)|env COMPLETE=bash _CLAP_COMPLETE_INDEX=3 _CLAP_COMPLETE_COMP_TYPE=9 _CLAP_COMPLETE_SPACE=true $xone -- xone requirement show BENCH-|10"
  "completion BENCH-<TAB>, all $N keys (fish)|env COMPLETE=fish $xone -- xone requirement show BENCH-|10"
  "git --version|git --version|0"
)
command -v gh >/dev/null && cases+=("gh --version|gh --version|0")

peak_kib() { # peak resident memory of one run, in KiB (GNU time)
  /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
}

printf '\n| command | mean ms | min ms | peak MiB | budget | within |\n|---|---:|---:|---:|---|---|\n'
for c in "${cases[@]}"; do
  IFS='|' read -r name cmd budget <<<"$c"
  json=$scratch/h.json
  hyperfine -N --warmup 5 --runs 50 --export-json "$json" "$cmd" >/dev/null 2>&1
  read -r mean min < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["mean"]*1000, r["min"]*1000)' "$json")
  # shellcheck disable=SC2086
  kib=$(peak_kib $cmd)
  mib=$(python3 -c "print(f'{$kib/1024:.1f}')")
  if [ "$budget" = 0 ]; then
    printf '| %s | %.2f | %.2f | %s | reference | |\n' "$name" "$mean" "$min" "$mib"
  else
    ok=$(python3 -c "print('yes' if $mean <= $budget and $kib <= 15*1024 else 'NO')")
    printf '| %s | %.2f | %.2f | %s | ≤ %s ms, ≤ 15 MiB | %s |\n' "$name" "$mean" "$min" "$mib" "$budget" "$ok"
  fi
done

# The GitLab fan-out: branch create across 20 repositories against a 50 ms server.
HOME=$real_home benches/gitlab.sh

# Rollouts: how soon xone notices one completed, and how many requests it costs.
HOME=$real_home benches/rollout.sh
