#!/usr/bin/env bash
# kvmux on PostgreSQL: signed Tencent get and put throughput through one gateway, then through three
# gateways sharing the database, each gateway driven by its own `kvmux bench --target` at the same
# time (the sum is the figure; the worst p99 of the three is reported). Run twice: against a
# durable server (fsync=on, synchronous_commit=on, full_page_writes=on) and against one with
# fsync=off, synchronous_commit=off, so the cost of durability is visible side by side.
# PostgreSQL is a throwaway server from scripts/postgres.sh (Debian's packages, 127.0.0.1, run as
# nobody, shared_buffers=32MB), stopped by PID afterwards.
#
# Rows: puts at 1 and 64 connections on one gateway (the scaling of durable commits), then gets
# and puts at TOTAL connections on one gateway and on three gateways (TOTAL/3 each).
# Env: DURATION (5), TOTAL connections (48), KEYS (2000), MODES ("on off"),
#      KVMUX_BIN (a built binary; default: cargo build --release and target/release/kvmux).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
TOTAL=${TOTAL:-48}
KEYS=${KEYS:-2000}
MODES=${MODES:-on off}
if [ -z "${KVMUX_BIN:-}" ]; then
  cargo build --release -q -p kvmux
  KVMUX_BIN=$PWD/target/release/kvmux
fi
KVMUX=$KVMUX_BIN
work=$(mktemp -d)
pgdir=""
gateways=()
stop_all() {
  for pid in "${gateways[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  gateways=()
  if [ -n "$pgdir" ]; then bash scripts/postgres.sh stop "$pgdir"; pgdir=""; fi
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_gateway N: a kvmux on the shared database; sets $addr. Not called in $(...): the PID must
# reach the cleanup trap's list in this shell.
start_gateway() {
  local port
  port=$(free_port)
  printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/g%s"\nstorage = "%s"\n' "$port" "$work" "$1" "$url" >"$work/g$1.toml"
  "$KVMUX" serve --config "$work/g$1.toml" >"$work/g$1.log" 2>&1 &
  gateways+=($!)
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/_kvmux/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  addr="127.0.0.1:$port"
}

bench() { # bench ADDR OP CONNECTIONS
  "$KVMUX" bench --json --target "$1" --dialect tencent --op "$2" --connections "$3" \
    --duration "$DURATION" --keys "$KEYS"
}

sum() { python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
ops = sum(r["result"]["ops_per_sec"] for r in runs)
p99 = max(r["result"]["p99_us"] for r in runs)
errors = sum(r["result"]["errors"] for r in runs)
print(f"{ops:9.0f} ops/s   worst p99 {p99} us   errors {errors}")'; }

each=$((TOTAL / 3))
echo "kvmux on PostgreSQL, tencent, ${DURATION}s per row, $KEYS keys, $(nproc) cores"
# The machine's load before and after: on a shared machine the figures mean little without it.
echo "before: $(uptime)"
trap 'echo "after: $(uptime)"; cleanup' EXIT
for mode in $MODES; do
  pgdir=$(mktemp -d -u /tmp/kvmux-pg-bench.XXXXXX)  # created by postgres.sh, readable by nobody
  if [ "$mode" = on ]; then
    url=$(bash scripts/postgres.sh start "$pgdir" -c fsync=on -c synchronous_commit=on \
      -c full_page_writes=on | tail -n 1)
  else
    url=$(bash scripts/postgres.sh start "$pgdir" -c fsync=off -c synchronous_commit=off | tail -n 1)
  fi
  echo "fsync=$mode"
  start_gateway 1
  a=$addr
  printf '  1 gateway   put  1 conn         '; bench "$a" put 1 | sum
  printf '  1 gateway   put 64 conns        '; bench "$a" put 64 | sum
  for op in get put; do
    printf '  1 gateway   %-3s %2d conns        ' "$op" "$TOTAL"; bench "$a" "$op" "$TOTAL" | sum
  done
  start_gateway 2
  b=$addr
  start_gateway 3
  c=$addr
  for op in get put; do
    printf '  3 gateways  %-3s %2d conns (3x%d) ' "$op" "$TOTAL" "$each"
    { bench "$a" "$op" "$each" & bench "$b" "$op" "$each" & bench "$c" "$op" "$each" & wait; } | sum
  done
  stop_all
done
