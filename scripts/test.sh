#!/usr/bin/env bash
# Runs every kvmux test on a fresh machine: formatting and lints, the Rust unit, property and
# end-to-end tests, then the real vendor SDK suites (Python, Node, Go, Java) against the real
# binary. Installs what the suites need (a Python venv with the pinned SDKs, npm packages, Go
# modules, Maven artifacts) from the package registries.
#
# Usage: scripts/test.sh [--long] [suite ...]
#        suites: lint rust python drift tls node edge go java docs package launchers postgres memory browser fuzz
#                (default: all)
#        docs    every SDK snippet marked snippet=NAME in README.md and docs/*.md, run as pasted
#                against a fresh release-build gateway each (tests/docs/run_snippets.py)
#        package scripts/package.sh (dist/: release binary, Python wheel, npm tarball, each
#                checked), then clients/python/tests in a fresh venv with only the wheel, pytest
#                and the pinned vendor SDKs, and the pytest fixtures' per-test overhead
#        launchers  the Node, Go and Java test launchers (clients/node packed and installed in an
#                empty npm project, clients/go/kvmuxtest, clients/java) with the real SDKs
#        memory  the Python, Node, Go and Java SDK suites against memory-store gateways started
#                as a test harness would (--storage memory --listen 127.0.0.1:0 --ready-file)
#        drift   every KV operation of the pinned vendor SDKs (all four languages) must be in
#                docs/COVERAGE.md (scripts/drift.sh; `scripts/drift.sh --latest` checks the
#                registries' newest releases instead and is not run here)
#        --long  the long reliability runs: 200 kills, 20,000 bad inputs, a longer
#                linearizability history, 10 minutes per fuzz target (hours in all)
# Output: each suite's output is shown without colour codes and kept in target/test-logs/; the
#         summary gives each suite's counts (cargo's "test result" lines summed, pytest's last
#         line, node:test's "# pass", go's ok/FAIL packages, surefire's reports, fuzz
#         executions; "?" when a count cannot be read), the reliability tests' seeds and counts
#         and the fuzz lines.
# Builds: one debug build serves every suite: with the rust suite in the run the SDK suites use
#         the binary `cargo test --workspace` built (same profile and features, so no crate is
#         compiled twice), and the docs suite runs it too instead of a release build. The
#         optimised builds (fuzz harness tests and targets, release binary) and the Python venvs
#         with the pinned SDKs are made in the background from the start (see "background
#         builds" below); their logs are target/test-logs/build-*.log.
# Env:   KVMUX_TEST_STORAGE=memory  run the node/edge/go/java suites on the memory store too
#        KV_MODEL_CASES=N  more engine model-test cases (default 1000; 300 on PostgreSQL)
#        KVMUX_KILLS, KVMUX_BAD_INPUTS, KVMUX_LIN_OPS override the reliability tests' sizes
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LONG=0
SUITES=()
for arg in "$@"; do
  case "$arg" in
    --long) LONG=1 ;;
    *) SUITES+=("$arg") ;;
  esac
done
[ ${#SUITES[@]} -eq 0 ] && SUITES=(lint rust python drift tls node edge go java docs package launchers postgres memory browser fuzz)
if [ "$LONG" -eq 1 ]; then
  export KVMUX_KILLS=${KVMUX_KILLS:-200}
  export KVMUX_BAD_INPUTS=${KVMUX_BAD_INPUTS:-20000}
  export KVMUX_LIN_OPS=${KVMUX_LIN_OPS:-20000}
fi

# Plain output, also in the logs: no colour codes from cargo, node or pytest.
export CARGO_TERM_COLOR=never NO_COLOR=1 FORCE_COLOR=0
LOGDIR="$ROOT/target/test-logs"
rm -rf "$LOGDIR" && mkdir -p "$LOGDIR"

failed=()
passed=()
declare -A counts=()
declare -A seconds=()
log() { printf '\n==> %s\n' "$*"; }
want() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
record() { # record NAME STATUS
  if [ "$2" -eq 0 ]; then passed+=("$1"); else failed+=("$1"); fi
}

# The pass/fail counts a suite's log shows, per runner ("?" when none can be read): cargo's
# "test result:" lines summed, pytest's (or the docs runner's) last summary line, node:test's
# "# pass/# fail/# skipped", go's "ok"/"FAIL" package lines, the surefire reports under DIR, the
# drift guard's checks and the fuzz summary lines.
count_tests() { # count_tests LOG [DIR]
  python3 - "$@" <<'PY' 2>/dev/null || echo "?"
import glob, re, sys
text = open(sys.argv[1], errors="replace").read()
lines = text.splitlines()
parts = []
def join(label, pairs):
    shown = [f"{n} {w}" for w, n in pairs if n or w == "passed"]
    parts.append(f"{label} " + ", ".join(shown))
cargo = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text)
if cargo:
    join("cargo", [(w, sum(int(c[i]) for c in cargo)) for i, w in enumerate(("passed", "failed", "ignored"))])
words = r"(?:passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)"
summary = [l for l in lines if re.match(rf"^[= ]*\d+ {words}(, \d+ {words})*( in [\d.]+s.*)?[= ]*$", l)]
if summary:
    parts.append("pytest " + re.sub(r" in [\d.]+s.*$", "", summary[-1].strip("= ")))
node = {}
for w, n in re.findall(r"^(?:# |\u2139 )(pass|fail|skipped) (\d+)$", text, re.M):
    node[w] = node.get(w, 0) + int(n)
if node:
    join("node", [("passed", node.get("pass", 0)), ("failed", node.get("fail", 0)), ("skipped", node.get("skipped", 0))])
# go test's package lines: "ok  <import path>  0.5s" (TAP's "ok 1 - name" lines are node's).
ok = len(re.findall(r"^ok\s+\S+\s+(?:\d[\d.]*s|\(cached\))", text, re.M))
bad = len(re.findall(r"^FAIL\s+\S+\s+\d[\d.]*s", text, re.M))
if ok or bad:
    parts.append(f"go {ok} packages ok" + (f", {bad} failed" if bad else ""))
if len(sys.argv) > 2:
    runs = [tuple(map(int, m)) for f in glob.glob(sys.argv[2] + "/target/surefire-reports/*.txt")
            for m in re.findall(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)", open(f).read())]
    if runs:
        run, fail, err, skip = (sum(r[i] for r in runs) for i in range(4))
        join("maven", [("passed", run - fail - err - skip), ("failed", fail + err), ("skipped", skip)])
drift = re.findall(r"^drift: (\d+) checks .*?, (\d+) passed, (\d+) failed", text, re.M)
if drift:
    join("drift", [("passed", int(drift[-1][1])), ("failed", int(drift[-1][2]))])
docs = re.findall(r"^docs: (\d+) passed, (\d+) failed", text, re.M)
if docs:
    join("snippets", [("passed", int(docs[-1][0])), ("failed", int(docs[-1][1]))])
fuzz = re.findall(r"^fuzz \w+ \S+: (\d+) executions", text, re.M)
if fuzz:
    parts.append(f"fuzz {len(fuzz)} targets, {sum(map(int, fuzz))} executions")
print("; ".join(parts) if parts else "?")
PY
}

# run_suite NAME [--dir DIR] CMD...: runs CMD with its output shown (colour codes stripped) and
# kept in target/test-logs/NAME.log, records its status and its counts (DIR: a Maven project,
# for its surefire reports).
run_suite() {
  local name=$1 dir="" logfile status
  shift
  if [ "${1:-}" = --dir ]; then dir=$2; shift 2; fi
  logfile="$LOGDIR/${name//[\/:]/_}.log"
  [ -n "$dir" ] && rm -rf "$dir/target/surefire-reports"
  local started=$SECONDS
  SUITE=$name "$@" 2>&1 | sed -u 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$logfile"
  status=${PIPESTATUS[0]}
  seconds[$name]=$((SECONDS - started))
  record "$name" "$status"
  # lint runs no tests: its status is all there is to say.
  [ "$name" = lint ] || counts[$name]=$(count_tests "$logfile" ${dir:+"$dir"})
  return "$status"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

KVMUX_BIN="$ROOT/target/debug/kvmux"
export KVMUX_BIN

# Runs "$@" with a fresh kvmux (default dev credentials), exported as KVMUX_ENDPOINT, and stops
# that kvmux by its PID afterwards. The gateway picks its own port (--listen 127.0.0.1:0) and
# says where it is in its ready file, written once it accepts: no port is chosen here and nothing
# polls. The storage is redb under a temp dir, or memory with KVMUX_TEST_STORAGE=memory.
with_kvmux() {
  local dir pid status endpoint storage=()
  dir=$(mktemp -d)
  cat >"$dir/kvmux.toml" <<TOML
data_dir = "$dir/data"
TOML
  [ "${KVMUX_TEST_STORAGE:-}" = memory ] && storage=(--storage memory)
  "$KVMUX_BIN" serve --config "$dir/kvmux.toml" "${storage[@]}" \
    --listen 127.0.0.1:0 --ready-file "$dir/ready.json" >"$dir/kvmux.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    [ -s "$dir/ready.json" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  endpoint=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host"])' "$dir/ready.json" 2>/dev/null)
  if [ -z "$endpoint" ]; then
    echo "kvmux wrote no ready file; its log:"; tail -n 40 "$dir/kvmux.log"
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"
    return 1
  fi
  KVMUX_ENDPOINT="$endpoint" "$@"
  status=$?
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ $status -ne 0 ]; then
    echo "--- kvmux log (last 40 lines) ---"; tail -n 40 "$dir/kvmux.log"
  fi
  rm -rf "$dir"
  return $status
}

lint_suite() {
  cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings
}

# sh_in DIR SCRIPT: runs SCRIPT (bash, with this script's functions) in DIR.
sh_in() (cd "$1" && eval "$2")

# The pinned vendor SDKs (tests/sdk/requirements-*.txt) as pip arguments.
SDK_REQUIREMENTS=()
for req in tests/sdk/requirements-*.txt; do
  [ -e "$req" ] && SDK_REQUIREMENTS+=(-r "$req")
done

# make_python_venv: .venv with pytest and the pinned SDKs, shared by the python, drift, tls,
# postgres, memory and docs suites (python_venv, below).
make_python_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check pytest==9.2.0 "${SDK_REQUIREMENTS[@]}"
}

# make_package_venv: the package suite's fresh venv (target/package-test/venv) with only pytest
# and the pinned SDKs; the suite adds the wheel.
PACKAGE_TEST=$ROOT/target/package-test
make_package_venv() {
  rm -rf "$PACKAGE_TEST" && mkdir -p "$PACKAGE_TEST/run"
  python3 -m venv "$PACKAGE_TEST/venv"
  "$PACKAGE_TEST/venv/bin/pip" install -q --disable-pip-version-check pytest==9.2.0 \
    "${SDK_REQUIREMENTS[@]}"
}

# --- background builds: what the suites need built that takes minutes but no suite's attention.
# The fuzz harness's tests and the cargo-fuzz targets (an instrumented release build in
# fuzz/target) and the release binary (`cargo build --release -p kvmux`) are from-scratch
# compiles of minutes each on 2 cores, and the Python venvs with the pinned SDKs (.venv, and the
# package suite's fresh one) take a pip install of about a minute each; done where their suites
# run, the whole run waited for them. Most of the run leaves a core idle (an SDK suite is one
# client and one gateway; many Rust tests run on one thread), so they start with the run, one
# after another in the order they are needed, in the background under `nice -n 19`: they take the
# CPU the suites leave, and next to none of what a suite uses. The fuzz suite runs before package
# and launchers, so the release build also gets the core the fuzzers (one thread each) leave.
# Each build's output is target/test-logs/build-NAME.log. A suite that needs a build waits for it
# (the wait counts in the suite's time and its log says how long) and fails, with the end of the
# build's log, when the build failed; the suite's own cargo commands then find the build fresh.
# The summary gives each build's time, the part of the run it took and the suites' waits. ---
BUILDS=()
declare -A build_cmd=()
BUILD_PID=

# background_build NAME COMMAND: queues COMMAND (a command line; this script's functions work)
# as background build NAME. queued NAME: whether NAME is queued.
background_build() { BUILDS+=("$1"); build_cmd[$1]=$2; }
queued() { [ -n "${build_cmd[$1]:-}" ]; }

# start_builds: runs the queued builds one after another in one background subshell under
# nice -n 19; each leaves "STATUS START END" (START, END: seconds into the run, as $SECONDS
# counts in the subshell too) in target/test-logs/build-NAME.status when it ends.
start_builds() {
  [ ${#BUILDS[@]} -gt 0 ] || return 0
  (
    renice --priority 19 -p "$BASHPID" >/dev/null
    for name in "${BUILDS[@]}"; do
      start=$SECONDS
      (eval "${build_cmd[$name]}") >"$LOGDIR/build-$name.log" 2>&1 </dev/null
      status=$?
      echo "$status $start $SECONDS" >"$LOGDIR/build-$name.tmp"
      mv "$LOGDIR/build-$name.tmp" "$LOGDIR/build-$name.status"
    done
  ) &
  BUILD_PID=$!
}

# descendants PID: the processes PID started, and theirs (by parent PID).
descendants() {
  local child
  for child in $(pgrep -P "$1"); do
    echo "$child"
    descendants "$child"
  done
}

# await_build NAME: waits for background build NAME; fails, with the end of its log, when the
# build failed. While a suite waits, the build runs at the suite's priority (renice, where
# allowed: as root), as it would in the foreground; the builds after it start at 19 again. Each
# wait is noted in target/test-logs/build-waits (build, suite, seconds).
await_build() {
  local name=$1 file="$LOGDIR/build-$1.status" since=$SECONDS status start end
  [ -f "$file" ] || echo "==> waiting for the background build $name (${build_cmd[$name]})"
  while [ ! -f "$file" ] && kill -0 "$BUILD_PID" 2>/dev/null; do
    # Not allowed, or a process already gone: no matter (the suites run under set -e).
    # shellcheck disable=SC2046
    renice --priority "$(nice)" -p $(descendants "$BUILD_PID") >/dev/null 2>&1 || true
    sleep 1
  done
  if ! read -r status start end 2>/dev/null <"$file"; then
    echo "the background build $name ended without a status; its log:"
    tail -n 60 "$LOGDIR/build-$name.log"
    return 1
  fi
  echo "$name ${SUITE:-?} $((SECONDS - since))" >>"$LOGDIR/build-waits"
  echo "==> background build $name: $((end - start)) s (from ${start} s to ${end} s into the run); waited $((SECONDS - since)) s for it"
  if [ "$status" -ne 0 ]; then
    echo "the background build $name failed (exit $status: ${build_cmd[$name]}); its log ends:"
    tail -n 60 "$LOGDIR/build-$name.log"
    return 1
  fi
}

# A build still running when the run ends (no suite waited for it: an earlier step failed) is
# stopped, with every process it started.
stop_builds() {
  [ -n "$BUILD_PID" ] && kill -0 "$BUILD_PID" 2>/dev/null || return 0
  # shellcheck disable=SC2046
  kill -TERM "$BUILD_PID" $(descendants "$BUILD_PID") 2>/dev/null
}
trap stop_builds EXIT

# In the order they are needed.
if want python || want drift || want tls || want postgres || want memory || want docs; then
  background_build python-venv make_python_venv
fi
if want fuzz; then
  background_build fuzz-tests "cargo test --manifest-path fuzz/Cargo.toml --lib --no-run"
  background_build fuzz-targets "bash scripts/fuzz.sh build"
fi
if want package || want launchers; then
  background_build release "cargo build --release -p kvmux"
fi
if want package; then
  background_build package-venv make_package_venv
fi
start_builds
# --- end background builds ---

# python_venv: .venv ready for a suite (made in the background when a suite that needs it is in
# the run).
python_venv() {
  if queued python-venv; then await_build python-venv; else make_python_venv; fi
}

if want lint; then
  log "cargo fmt --check and cargo clippy"
  run_suite lint lint_suite
fi

# The reliability tests (crates/kvmux/tests/{kill,linearizability,bad_input}.rs) print their seeds
# and counts; cargo hides a passing test's output, so they run on their own with --nocapture and
# their lines are repeated in the summary. These name them (substrings of the test names).
RELIABILITY=(sigkill_at_random_moments concurrent_reads_writes_and_compare_and_sets
  malformed_requests_with_auth_off malformed_signed_requests)

# Every cargo invocation here selects the whole workspace (--workspace, narrowed by --test):
# `-p CRATE` resolves other features, which made cargo compile tokio, hyper, serde and every
# workspace crate a second time.
rust_suite() (
  set -e
  cargo test --workspace -- "${RELIABILITY[@]/#/--skip=}"
  cargo test --workspace --test kill --test linearizability --test bad_input -- --nocapture \
    "${RELIABILITY[@]}"
  # The engine model test once more on the in-memory store (the run above uses redb).
  KV_TEST_STORAGE=memory cargo test --workspace --test model
)

if want rust; then
  log "cargo test (unit, property, end-to-end)"
  run_suite rust rust_suite
fi

# The debug binary every other suite runs ($KVMUX_BIN), built once. After the rust suite
# `cargo test --workspace --no-run` finds it built with the same features (nothing to compile);
# `cargo build -p kvmux` alone would resolve other features and compile ~30 crates again. It is
# the fallback when a test target does not compile (the rust suite has failed on that already).
build_kvmux() {
  if want rust; then
    cargo test --workspace --no-run && return 0
    echo "cargo test --workspace --no-run failed; building the binary alone"
  fi
  cargo build -p kvmux
}

if want python || want tls || want node || want edge || want go || want java || want memory \
  || want docs || want postgres || want browser; then
  log "building the kvmux binary for the SDK suites"
  build_kvmux || { failed+=(build); want python && failed+=(python); SUITES=(); }
fi

PYTEST=(.venv/bin/pytest -q -p no:cacheprovider --color=no)

if want python; then
  log "Python SDK suites (pytest, pinned SDKs in a venv)"
  python_suite() ( set -e; python_venv; "${PYTEST[@]}" tests/sdk )
  run_suite python python_suite
fi

if want drift; then
  # The drift guard: first proves it can fail (planted operations in fake SDK trees), then reads
  # the pinned SDKs as the suites install them (the same venv as python_venv, npm ci, go mod
  # download, Maven) and fails when docs/COVERAGE.md lacks an operation one of them has.
  log "drift guard: vendor SDK operations vs docs/COVERAGE.md"
  drift_suite() (
    set -e
    python3 scripts/drift.py --coverage docs/COVERAGE.md --self-test
    python_venv
    bash scripts/drift.sh
  )
  run_suite drift drift_suite
fi

if want tls; then
  # The same Python SDK suites over HTTPS: the gateway generates a self-signed certificate at
  # start-up ([tls] self_signed) and every SDK client trusts only that certificate.
  log "Python SDK suites over TLS"
  tls_suite() ( set -e; python_venv; KVMUX_TEST_TLS=1 "${PYTEST[@]}" tests/sdk )
  run_suite tls tls_suite
fi

if want postgres; then
  # The same engine model test and Python SDK suites on the PostgreSQL backend, against a
  # throwaway server (Debian's packages, 127.0.0.1, a free port, run as nobody) stopped after.
  log "PostgreSQL backend: model and engine tests, PostgreSQL engine tests, three gateways, Python SDK suites"
  postgres_suite() (
    set -e
    pgdir=$(mktemp -d -u /tmp/kvmux-pg.XXXXXX)
    trap 'bash scripts/postgres.sh stop "$pgdir"' EXIT
    url=$(bash scripts/postgres.sh start "$pgdir" | tail -n 1)
    echo "PostgreSQL at $url"
    KV_TEST_POSTGRES="$url" KV_MODEL_CASES="${KV_MODEL_CASES:-300}" cargo test --workspace \
      --test model --test engine --test postgres_engine --test postgres_store_parity
    KV_TEST_POSTGRES="$url" cargo test --workspace --test multi_gateway
    python_venv
    KVMUX_TEST_STORAGE="$url" "${PYTEST[@]}" tests/sdk
  )
  run_suite postgres postgres_suite
fi

if want memory; then
  # The issue's done-when: every SDK suite once more against memory-store gateways that pick their
  # own port and announce it in a ready file (conftest's KVMUX_TEST_STORAGE=memory mode for
  # Python, with_kvmux for the others). Tests that restart on the same data are skipped there,
  # with the reason.
  log "memory store: Python SDK suites (--storage memory --listen 127.0.0.1:0 --ready-file)"
  memory_python() ( set -e; python_venv; KVMUX_TEST_STORAGE=memory "${PYTEST[@]}" -rs tests/sdk )
  run_suite memory:python memory_python
  for dir in tests/sdk/node/*/ tests/sdk/go/*/ tests/sdk/java/*/; do
    name="memory:$(basename "$(dirname "$dir")")/$(basename "$dir")"
    if [ -f "$dir/package.json" ]; then
      log "memory store: Node SDK suite $dir"
      run_suite "$name" sh_in "$dir" 'npm ci --no-audit --no-fund --loglevel=error \
        && KVMUX_TEST_STORAGE=memory with_kvmux npm test --silent'
    elif [ -f "$dir/go.mod" ]; then
      log "memory store: Go SDK suite $dir"
      run_suite "$name" sh_in "$dir" 'KVMUX_TEST_STORAGE=memory with_kvmux go test -count=1 ./...'
    elif [ -f "$dir/pom.xml" ]; then
      log "memory store: Java SDK suite $dir"
      run_suite "$name" --dir "$dir" sh_in "$dir" 'KVMUX_TEST_STORAGE=memory with_kvmux mvn -q -B test'
    fi
  done
fi

if want node; then
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    log "Node SDK suite: $dir"
    run_suite "node:$(basename "$dir")" sh_in "$dir" \
      'npm ci --no-audit --no-fund --loglevel=error && with_kvmux npm test --silent'
  done
fi

# --- edge (kvmux-edge): the EdgeOne Pages KV and ESA EdgeKV runtime bindings in clients/edge and
# the examples/edge handlers, node:test against a fresh kvmux each (KVMUX_URL), cross-checked with
# the same pinned Node SDKs as the node suite. ---
if want edge; then
  log "edge: kvmux-edge bindings (clients/edge) and examples/edge"
  edge_suite() (
    set -e
    cd clients/edge
    npm ci --no-audit --no-fund --loglevel=error
    with_kvmux sh -c 'KVMUX_URL="http://$KVMUX_ENDPOINT" npm test --silent'
    cd ../../examples/edge
    with_kvmux sh -c 'KVMUX_URL="http://$KVMUX_ENDPOINT" npm test --silent'
  )
  run_suite edge edge_suite
fi
# --- end edge ---

if want go; then
  for dir in tests/sdk/go/*/; do
    [ -f "$dir/go.mod" ] || continue
    log "Go SDK suite: $dir"
    run_suite "go:$(basename "$dir")" sh_in "$dir" 'with_kvmux go test -count=1 ./...'
  done
fi

if want java; then
  for dir in tests/sdk/java/*/; do
    [ -f "$dir/pom.xml" ] || continue
    log "Java SDK suite: $dir"
    run_suite "java:$(basename "$dir")" --dir "$dir" sh_in "$dir" 'with_kvmux mvn -q -B test'
  done
fi

# --- docs: the README / docs/*.md SDK snippets (issue 21). tests/docs/run_snippets.py extracts every
# block marked snippet=NAME, fails on an unmarked SDK block, and runs each snippet as pasted against
# a fresh `target/release/kvmux serve --storage memory --listen 127.0.0.1:0 --ready-file F`, with
# the suites' pinned SDKs: the venv, npm ci in tests/sdk/node/*, the go.mod / pom.xml of
# tests/sdk/{go,java}/* (Go modules and Maven artifacts are fetched on first use). The gateway is
# the debug build the other suites use ($KVMUX_BIN): a release build only for this took ~7
# minutes on 2 cores, and the snippets test the docs, not the optimiser. ---
docs_suite() {
  python_venv || return 1
  local dir
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  done
  python3 tests/docs/run_snippets.py --bin "$KVMUX_BIN"
}

if want docs; then
  log "docs: every SDK snippet in README.md and docs/*.md against a fresh kvmux each"
  run_suite docs docs_suite
fi
# --- end docs ---

if want browser; then
  # The dashboard in a real headless Chromium (Debian chromium + chromium-driver, driven by a
  # pinned Selenium); the test starts its own kvmux. Screenshots land in target/browser/.
  log "browser: the dashboard in headless Chromium"
  browser_suite() (
    set -e
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    if queued python-venv; then await_build python-venv; fi
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/browser/requirements.txt
    "${PYTEST[@]}" tests/browser
  )
  run_suite browser browser_suite
fi

if want fuzz; then
  # cargo-fuzz targets for each dialect's request handling and each signature verifier, from
  # the committed seeds: 15 s each (10 minutes each with --long). Before package and launchers,
  # so that the release build gets the core the fuzzers leave (see "background builds").
  log "fuzzing: the harness's own tests, then every target"
  fuzz_suite() (
    set -e
    await_build fuzz-tests
    cargo test --manifest-path fuzz/Cargo.toml --lib
    await_build fuzz-targets
    if [ "$LONG" -eq 1 ]; then
      bash scripts/fuzz.sh long
    else
      bash scripts/fuzz.sh smoke 15
    fi
  )
  run_suite fuzz fuzz_suite
fi

# --- package (issue 16): scripts/package.sh builds dist/ from this checkout (the release binary,
# the Python wheel with the stripped binary, the npm tarball when clients/node/pack.sh exists) and
# checks each. Then the Python package's tests run as a user would run them: a fresh venv with
# only pytest, the pinned vendor SDKs of tests/sdk/requirements-*.txt and the wheel from dist/,
# KVMUX_BIN unset (the wheel's binary), from a scratch directory (nothing of this tree on
# sys.path). overhead.py first prints the fixtures' per-test cost (its inner pytest run's summary
# line comes before the real one, which the summary counts). ---
package_suite() (
  set -e
  await_build release
  bash scripts/package.sh
  await_build package-venv
  work=$PACKAGE_TEST
  start=$(date +%s.%N)
  "$work/venv/bin/pip" install -q --disable-pip-version-check --no-index --no-deps dist/kvmux-*.whl
  echo "pip install of the wheel (venv with the SDKs): $(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')") s"
  cd "$work/run"
  env -u KVMUX_BIN "$work/venv/bin/python" "$ROOT/clients/python/tests/overhead.py" 50
  env -u KVMUX_BIN "$work/venv/bin/pytest" -q -p no:cacheprovider --color=no -rs \
    "$ROOT/clients/python/tests"
)

if want package; then
  log "package: dist/ artifacts, then the kvmux wheel's tests in a fresh venv"
  run_suite package package_suite
fi
# --- end package ---

# --- launchers (issue 16): the Node, Go and Java test launchers. The release binary (cargo build
# --release -p kvmux, a no-op when fresh) is packed by clients/node/pack.sh (as scripts/package.sh
# does for dist/) into a kvmux-*.tgz; clients/node/test/run.sh installs that tarball with the
# pinned Tencent/Aliyun SDKs and vitest into an empty npm project and runs its node:test and
# vitest files; the Go (clients/go/kvmuxtest, clients/go/sdktest) and Java (clients/java) tests
# run the binary taken out of that tarball (KVMUX_BIN). Each prints its launcher's start-up and reset() medians ("kvmux launcher ..."). ---
launchers_suite() (
  set -e
  await_build release
  cargo build --release -p kvmux
  # Packed into a temp dir of its own: scripts/package.sh may be rebuilding dist/ meanwhile.
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  tarball=$(bash clients/node/pack.sh "$unpacked" | tail -n 1)
  bash clients/node/test/run.sh "$tarball"
  tar -xzf "$tarball" -C "$unpacked" package/bin/linux-x64/kvmux
  export KVMUX_BIN="$unpacked/package/bin/linux-x64/kvmux"
  (cd clients/go/kvmuxtest && go vet ./... && go test -count=1 ./...)
  (cd clients/go/sdktest && go test -count=1 -v ./...)
  (cd clients/java && mvn -q -B test)
)

if want launchers; then
  log "launchers: the npm package (packed, installed in an empty npm project), Go kvmuxtest, Java JUnit 5 extension"
  run_suite launchers --dir clients/java launchers_suite
fi
# --- end launchers ---

log "summary"
# Each suite's counts and its wall-clock time (the debug build step before the SDK suites is not
# counted; a suite's wait for a background build is). Then each background build: its time, the
# part of the run it took, and which suites waited for it how long.
for name in "${passed[@]}" "${failed[@]}"; do
  echo "$name (${seconds[$name]:-?} s)${counts[$name]:+: ${counts[$name]}}"
done
for name in "${BUILDS[@]}"; do
  if read -r status start end 2>/dev/null <"$LOGDIR/build-$name.status"; then
    waits=$(awk -v b="$name" '$1 == b { printf "%s%s %s s", sep, $2, $3; sep = ", " }' \
      "$LOGDIR/build-waits" 2>/dev/null)
    result=ok; [ "$status" -eq 0 ] || result="FAILED (exit $status)"
    echo "background build $name (${build_cmd[$name]}, nice 19): $((end - start)) s, from $start s to $end s into the run, $result; waited for: ${waits:-by no suite}"
  else
    echo "background build $name (${build_cmd[$name]}, nice 19): not finished (stopped with the run)"
  fi
done
echo "total: $SECONDS s"
# The reliability tests' seeds and counts (replay a run with the seed it names), and the
# executions of each fuzz target.
if [ -f "$LOGDIR/rust.log" ]; then
  grep -E '^(kill: |linearizability: |bad_input |== )' "$LOGDIR/rust.log" | sed 's/^/reliability: /'
fi
[ -f "$LOGDIR/fuzz.log" ] && grep -E '^fuzz (smoke|long) ' "$LOGDIR/fuzz.log"
echo "logs: $LOGDIR"
echo "passed suites: ${passed[*]:-none}"
echo "failed suites: ${failed[*]:-none}"
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
