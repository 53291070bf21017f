#!/usr/bin/env bash
# Runs every kvmux test on a fresh machine: formatting and lints, the Rust unit, property and
# end-to-end tests, then the real vendor SDK suites (Python, Node, Go, Java) against the real
# binary. Installs what the suites need (a Python venv with the pinned SDKs, npm packages, Go
# modules, Maven artifacts) from the package registries.
#
# Usage: scripts/test.sh [--long] [suite ...]
#        suites: lint rust python drift tls node edge go java docs postgres memory browser fuzz
#                (default: all)
#        docs    every SDK snippet marked snippet=NAME in README.md and docs/*.md, run as pasted
#                against a fresh release-build gateway each (tests/docs/run_snippets.py)
#        memory  the Python, Node, Go and Java SDK suites against memory-store gateways started
#                as a test harness would (--storage memory --listen 127.0.0.1:0 --ready-file)
#        drift   every KV operation of the pinned vendor SDKs (all four languages) must be in
#                docs/COVERAGE.md (scripts/drift.sh; `scripts/drift.sh --latest` checks the
#                registries' newest releases instead and is not run here)
#        --long  the long reliability runs: 200 kills, 20,000 bad inputs, a longer
#                linearizability history, 10 minutes per fuzz target (hours in all)
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
[ ${#SUITES[@]} -eq 0 ] && SUITES=(lint rust python drift tls node edge go java docs postgres memory browser fuzz)
if [ "$LONG" -eq 1 ]; then
  export KVMUX_KILLS=${KVMUX_KILLS:-200}
  export KVMUX_BAD_INPUTS=${KVMUX_BAD_INPUTS:-20000}
  export KVMUX_LIN_OPS=${KVMUX_LIN_OPS:-20000}
fi

failed=()
passed=()
log() { printf '\n==> %s\n' "$*"; }
want() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
record() { # record NAME STATUS
  if [ "$2" -eq 0 ]; then passed+=("$1"); else failed+=("$1"); fi
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

if want lint; then
  log "cargo fmt --check and cargo clippy"
  cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings
  record lint $?
fi

if want rust; then
  log "cargo test (unit, property, end-to-end)"
  (
    set -e
    cargo test --workspace
    # The engine model test once more on the in-memory store (the run above uses redb).
    KV_TEST_STORAGE=memory cargo test -p kv-core --test model
  )
  record rust $?
fi

# The Python venv with the pinned SDKs, shared by the python, tls and postgres suites.
python_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check pytest==9.2.0 || return 1
  local req
  for req in tests/sdk/requirements-*.txt; do
    if [ -e "$req" ]; then
      .venv/bin/pip install -q --disable-pip-version-check -r "$req" || return 1
    fi
  done
}

if want python || want tls || want node || want go || want java || want memory; then
  log "building the kvmux binary for the SDK suites"
  cargo build -p kvmux || { failed+=(build); want python && failed+=(python); SUITES=(); }
fi

if want python; then
  log "Python SDK suites (pytest, pinned SDKs in a venv)"
  (
    set -e
    python_venv
    .venv/bin/pytest -q -p no:cacheprovider tests/sdk
  )
  record python $?
fi

if want drift; then
  # The drift guard: first proves it can fail (planted operations in fake SDK trees), then reads
  # the pinned SDKs as the suites install them (the same venv as python_venv, npm ci, go mod
  # download, Maven) and fails when docs/COVERAGE.md lacks an operation one of them has.
  log "drift guard: vendor SDK operations vs docs/COVERAGE.md"
  (
    set -e
    python3 scripts/drift.py --coverage docs/COVERAGE.md --self-test
    python_venv
    bash scripts/drift.sh
  )
  record drift $?
fi

if want tls; then
  # The same Python SDK suites over HTTPS: the gateway generates a self-signed certificate at
  # start-up ([tls] self_signed) and every SDK client trusts only that certificate.
  log "Python SDK suites over TLS"
  (
    set -e
    python_venv
    KVMUX_TEST_TLS=1 .venv/bin/pytest -q -p no:cacheprovider tests/sdk
  )
  record tls $?
fi

if want postgres; then
  # The same engine model test and Python SDK suites on the PostgreSQL backend, against a
  # throwaway server (Debian's packages, 127.0.0.1, a free port, run as nobody) stopped after.
  log "PostgreSQL backend: model and engine tests, PostgreSQL engine tests, three gateways, Python SDK suites"
  (
    set -e
    pgdir=$(mktemp -d -u /tmp/kvmux-pg.XXXXXX)
    trap 'bash scripts/postgres.sh stop "$pgdir"' EXIT
    url=$(bash scripts/postgres.sh start "$pgdir" | tail -n 1)
    echo "PostgreSQL at $url"
    KV_TEST_POSTGRES="$url" KV_MODEL_CASES="${KV_MODEL_CASES:-300}" \
      cargo test -p kv-core --test model --test engine --test postgres_engine --test postgres_store_parity
    KV_TEST_POSTGRES="$url" cargo test -p kvmux --test multi_gateway
    cargo build -p kvmux
    python_venv
    KVMUX_TEST_STORAGE="$url" .venv/bin/pytest -q -p no:cacheprovider tests/sdk
  )
  record postgres $?
fi

if want memory; then
  # The issue's done-when: every SDK suite once more against memory-store gateways that pick their
  # own port and announce it in a ready file (conftest's KVMUX_TEST_STORAGE=memory mode for
  # Python, with_kvmux for the others). Tests that restart on the same data are skipped there,
  # with the reason.
  log "memory store: Python SDK suites (--storage memory --listen 127.0.0.1:0 --ready-file)"
  (
    set -e
    python_venv
    KVMUX_TEST_STORAGE=memory .venv/bin/pytest -q -p no:cacheprovider -rs tests/sdk
  )
  record memory:python $?
  for dir in tests/sdk/node/*/ tests/sdk/go/*/ tests/sdk/java/*/; do
    if [ -f "$dir/package.json" ]; then
      log "memory store: Node SDK suite $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error \
        && KVMUX_TEST_STORAGE=memory with_kvmux npm test --silent)
    elif [ -f "$dir/go.mod" ]; then
      log "memory store: Go SDK suite $dir"
      (cd "$dir" && KVMUX_TEST_STORAGE=memory with_kvmux go test -count=1 ./...)
    elif [ -f "$dir/pom.xml" ]; then
      log "memory store: Java SDK suite $dir"
      (cd "$dir" && KVMUX_TEST_STORAGE=memory with_kvmux mvn -q -B test)
    else
      continue
    fi
    record "memory:$(basename "$(dirname "$dir")")/$(basename "$dir")" $?
  done
fi

if want node; then
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    log "Node SDK suite: $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && with_kvmux npm test --silent)
    record "node:$(basename "$dir")" $?
  done
fi

# --- edge (kvmux-edge): the EdgeOne Pages KV and ESA EdgeKV runtime bindings in clients/edge and
# the examples/edge handlers, node:test against a fresh kvmux each (KVMUX_URL), cross-checked with
# the same pinned Node SDKs as the node suite. ---
if want edge; then
  log "edge: kvmux-edge bindings (clients/edge) and examples/edge"
  (
    set -e
    cargo build -p kvmux
    cd clients/edge
    npm ci --no-audit --no-fund --loglevel=error
    with_kvmux sh -c 'KVMUX_URL="http://$KVMUX_ENDPOINT" npm test --silent'
    cd ../../examples/edge
    with_kvmux sh -c 'KVMUX_URL="http://$KVMUX_ENDPOINT" npm test --silent'
  )
  record edge $?
fi
# --- end edge ---

if want go; then
  for dir in tests/sdk/go/*/; do
    [ -f "$dir/go.mod" ] || continue
    log "Go SDK suite: $dir"
    (cd "$dir" && with_kvmux go test -count=1 ./...)
    record "go:$(basename "$dir")" $?
  done
fi

if want java; then
  for dir in tests/sdk/java/*/; do
    [ -f "$dir/pom.xml" ] || continue
    log "Java SDK suite: $dir"
    (cd "$dir" && with_kvmux mvn -q -B test)
    record "java:$(basename "$dir")" $?
  done
fi

# --- docs: the README / docs/*.md SDK snippets (issue 21). tests/docs/run_snippets.py extracts every
# block marked snippet=NAME, fails on an unmarked SDK block, and runs each snippet as pasted against
# a fresh `target/release/kvmux serve --storage memory --listen 127.0.0.1:0 --ready-file F`, with
# the suites' pinned SDKs: the venv, npm ci in tests/sdk/node/*, the go.mod / pom.xml of
# tests/sdk/{go,java}/* (Go modules and Maven artifacts are fetched on first use). ---
docs_suite() {
  cargo build --release -p kvmux || return 1
  python_venv || return 1
  local dir
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  done
  python3 tests/docs/run_snippets.py
}

if want docs; then
  log "docs: every SDK snippet in README.md and docs/*.md against a fresh kvmux each"
  docs_suite
  record docs $?
fi
# --- end docs ---

if want browser; then
  # The dashboard in a real headless Chromium (Debian chromium + chromium-driver, driven by a
  # pinned Selenium); the test starts its own kvmux. Screenshots land in target/browser/.
  log "browser: the dashboard in headless Chromium"
  (
    set -e
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    fi
    cargo build -p kvmux
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/browser/requirements.txt
    .venv/bin/pytest -q -p no:cacheprovider tests/browser
  )
  record browser $?
fi

if want fuzz; then
  # cargo-fuzz targets for each dialect's request handling and each signature verifier, from
  # the committed seeds: 15 s each (10 minutes each with --long).
  log "fuzzing: the harness's own tests, then every target"
  (
    set -e
    cargo test --manifest-path fuzz/Cargo.toml --lib
    if [ "$LONG" -eq 1 ]; then
      bash scripts/fuzz.sh long
    else
      bash scripts/fuzz.sh smoke 15
    fi
  )
  record fuzz $?
fi

log "summary"
echo "passed suites: ${passed[*]:-none}"
echo "failed suites: ${failed[*]:-none}"
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
