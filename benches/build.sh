#!/usr/bin/env bash
# SPEC §7 and the builds issue: a local image build through xone against `docker build` on
# the same context and engine (median of several runs each; budget: no slower, within
# noise), once with the legacy builder on both sides and once through BuildKit (a
# multi-stage Dockerfile with a cache mount, each run on a changed context, against
# `DOCKER_BUILDKIT=1 docker build`); and the delay between a GitLab pipeline finishing and
# xone reporting it.
#
#   benches/build.sh            # needs root, hyperfine and what scripts/services needs
#   RUNS=9 benches/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
RUNS=${RUNS:-7}
command -v hyperfine >/dev/null || { echo "benches/build.sh needs hyperfine" >&2; exit 2; }
cargo build --release --quiet
cargo build --release --quiet --example fake_gitlab
xone=$PWD/target/release/xone
fake=$PWD/target/release/examples/fake_gitlab
. "$here/../scripts/setup"
. "$here/../scripts/services"
work=$svc/bench
mkdir -p "$work/home"
export HOME=$work/home XONE_HOME=$work/state XONE_USER=bench CI=1

# A context of a few megabytes in a committed repository.
repo=$work/web
git init -q -b main "$repo"
mkdir -p "$repo/static"
for i in $(seq 40); do head -c 100000 /dev/urandom | od -An -tx1 >"$repo/static/f$i.txt"; done
printf 'FROM %s\nCOPY static /static\nRUN ls /static | wc -l\n' "$XONE_TEST_BASE_IMAGE" >"$repo/Dockerfile"
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm context
"$xone" project create BENCH --name Bench --repo "$repo" >/dev/null 2>&1
"$xone" project app add BENCH web --repo web --image bench/web >/dev/null 2>&1

# docker build gets the same files xone sends: the commit, without .git.
ctx=$work/ctx
mkdir -p "$ctx"
git -C "$repo" archive HEAD | tar -x -C "$ctx"
DOCKER_BUILDKIT=0 hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/build.json" \
  -n "docker build" "docker build -q -t bench/docker:latest $ctx" \
  -n "xone build --local" "$xone build web --ref main --local" >/dev/null 2>&1
table() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
d, x = r["docker build"]["median"] * 1000, r["xone build --local"]["median"] * 1000
print(f"\n| {sys.argv[2]} | median ms |\n|---|---:|")
print(f"| docker build | {d:.0f} |")
print(f"| xone build --local | {x:.0f} |")
print(f"| ratio (budget ≤ 1.0, plus noise) | {x / d:.2f} |")
PY
}
table "$work/build.json" "legacy builder: same context and engine"

# BuildKit: a stage the image does not need (skipped), a dependency stage whose cache mount
# stays warm between builds, and a context that changes before every run, so that each run
# copies and runs its last steps again on both sides. RUN steps get no network (this engine
# has no bridge). docker's side needs a CLI that builds with BuildKit by itself (Debian's
# 20.10 does; a newer one wants the buildx plug-in): the first on PATH that can is used.
bk=$work/bk
git init -q -b main "$bk"
cp -r "$repo/static" "$bk/static"
cat >"$bk/Dockerfile" <<DOCKERFILE
FROM $XONE_TEST_BASE_IMAGE AS unused
RUN sleep 30

FROM $XONE_TEST_BASE_IMAGE AS deps
RUN --mount=type=cache,target=/cache for i in \$(seq 300); do [ -f /cache/\$i ] || echo \$i >/cache/\$i; done; ls /cache | wc -l >/deps.txt

FROM $XONE_TEST_BASE_IMAGE
COPY --from=deps /deps.txt /deps.txt
COPY static /static
COPY stamp.txt /stamp.txt
RUN --mount=type=cache,target=/cache ls /static /cache | wc -l >/count.txt
DOCKERFILE
date +%s%N >"$bk/stamp.txt"
git -C "$bk" add -A
git -C "$bk" -c user.name=bench -c user.email=bench@localhost commit -qm buildkit
"$xone" project create BK --name BuildKit --repo "$bk" >/dev/null 2>&1
"$xone" project app add BK bk --repo bk --image bench/bk >/dev/null 2>&1
bkctx=$work/bkctx
mkdir -p "$bkctx"
git -C "$bk" archive HEAD | tar -x -C "$bkctx"
cli=
for c in $(which -a docker | awk '!seen[$0]++'); do
  if DOCKER_BUILDKIT=1 "$c" build -q --network none -t bench/probe:latest "$bkctx" >/dev/null 2>&1; then
    cli=$c
    break
  fi
done
[ -n "$cli" ] || { echo "no docker CLI here builds with BuildKit by itself (install Debian's docker.io)" >&2; exit 2; }
export XONE_BUILD_NETWORK=none
hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/bk.json" \
  -n "docker build" --prepare "date +%s%N >$bkctx/stamp.txt" \
  "DOCKER_BUILDKIT=1 $cli build -q --network none -t bench/bkdocker:latest $bkctx" \
  -n "xone build --local" --prepare "date +%s%N >$bk/stamp.txt && git -C $bk -c user.name=b -c user.email=b@l commit -qam stamp" \
  "$xone build bk --ref main --local" >/dev/null 2>&1
grep -q "through the engine's BuildKit" "$XONE_HOME/builds/"*.log ||
  { echo "xone did not build through BuildKit" >&2; exit 1; }
table "$work/bk.json" "BuildKit: multi-stage, cache mount, changed context ($("$cli" --version | cut -d, -f1))"

# The pipeline: the fake's default pipeline is taken up after 100 ms and runs two jobs of
# 150 ms each, so it finishes 400 ms after it starts.
"$fake" --projects 1 --token glpat-bench --root "$work/gitlab" >"$work/url" 2>"$work/fake.log" </dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
export XONE_GITLAB_URL=$(head -n 1 "$work/url") XONE_GITLAB_TOKEN=glpat-bench
"$xone" project create GL --name Pipelines --repo gitlab:bench/r1 >/dev/null 2>&1
"$xone" project app add GL r1 --repo r1 >/dev/null 2>&1
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$work/pipe.json" \
  "$xone build r1 -p GL --ref main --pipeline --wait" >/dev/null 2>&1
python3 - "$work/pipe.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
m = r["median"] * 1000
print("\n| pipeline (finishes 400 ms after it starts) | ms |\n|---|---:|")
print(f"| xone build --pipeline --wait, median wall | {m:.0f} |")
print(f"| after the pipeline finished (wall - 400 ms; start-up and requests included) | {m - 400:.0f} |")
PY
