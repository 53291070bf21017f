#!/usr/bin/env bash
# kvmux on PostgreSQL: signed Tencent get and put throughput through one gateway, then through three
# gateways sharing the database, each gateway driven by its own `kvmux bench --target` at the same
# time (the sum is the figure). PostgreSQL is a throwaway server from scripts/postgres.sh (Debian's
# packages, 127.0.0.1, run as nobody; fsync=off, shared_buffers=32MB), stopped by PID afterwards.
# Env: DURATION (5), CONNECTIONS per gateway (16), KEYS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-16}
KEYS=${KEYS:-2000}
cargo build --release -q -p kvmux
KVMUX=$PWD/target/release/kvmux
work=$(mktemp -d)
pgdir=$(mktemp -d -u /tmp/kvmux-pg-bench.XXXXXX)  # created by postgres.sh, readable by nobody
gateways=()
cleanup() {
  for pid in "${gateways[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  bash scripts/postgres.sh stop "$pgdir"
  rm -rf "$work"
}
trap cleanup EXIT
url=$(bash scripts/postgres.sh start "$pgdir" | tail -n 1)

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

bench() { # bench ADDR OP
  "$KVMUX" bench --json --target "$1" --dialect tencent --op "$2" --connections "$CONNECTIONS" \
    --duration "$DURATION" --keys "$KEYS"
}

sum() { python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
ops = sum(r["result"]["ops_per_sec"] for r in runs)
p99 = max(r["result"]["p99_us"] for r in runs)
errors = sum(r["result"]["errors"] for r in runs)
print(f"{ops:9.0f} ops/s   worst p99 {p99} us   errors {errors}")'; }

echo "kvmux on PostgreSQL, tencent, $CONNECTIONS connections per gateway, ${DURATION}s, $(nproc) cores"
start_gateway 1
a=$addr
for op in get put; do
  printf '  1 gateway   %-3s ' "$op"; bench "$a" "$op" | sum
done
start_gateway 2
b=$addr
start_gateway 3
c=$addr
for op in get put; do
  printf '  3 gateways  %-3s ' "$op"
  { bench "$a" "$op" & bench "$b" "$op" & bench "$c" "$op" & wait; } | sum
done
