#!/usr/bin/env bash
# kvmux against moto's DynamoDB server on the equivalent load: signed single-key get and put, the
# same number of keep-alive connections, the same value size and duration, both driven by
# `kvmux bench` in one run. Installs moto[server] into bench/.venv-moto, starts it on a free
# 127.0.0.1 port, stops it by its PID, and prints the ratio kvmux/moto per operation.
#
# Env: CONNECTIONS (16), DURATION seconds (10), KEYS (2000), VALUE_SIZE (1024), DIALECT (tencent)
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
KEYS=${KEYS:-2000}
VALUE_SIZE=${VALUE_SIZE:-1024}
DIALECT=${DIALECT:-tencent}
MOTO_VERSION=5.2.5

cargo build --release -q -p kvmux
KVMUX=target/release/kvmux
VENV=bench/.venv-moto
if [ ! -x "$VENV/bin/moto_server" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

common=(--connections "$CONNECTIONS" --duration "$DURATION" --keys "$KEYS" --value-size "$VALUE_SIZE" --json)
echo "kvmux ($DIALECT) vs moto $MOTO_VERSION DynamoDB, $CONNECTIONS connections, ${DURATION}s, $VALUE_SIZE B values, $(nproc) cores"
for op in get put; do
  moto=$("$KVMUX" bench --dialect dynamodb --target "127.0.0.1:$port" --op "$op" "${common[@]}")
  kv=$("$KVMUX" bench --dialect "$DIALECT" --op "$op" "${common[@]}")
  python3 - "$op" "$moto" "$kv" <<'PY'
import json, sys
op, moto, kv = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
m, k = moto["result"], kv["result"]
for name, r in (("moto", m), ("kvmux", k)):
    if r["errors"]:
        print(f"  warning: {name} {op} had {r['errors']} errors: {r.get('first_error')}")
print(f"  {op:4}  moto {m['ops_per_sec']:9.0f} ops/s (p99 {m['p99_us']} µs)   "
      f"kvmux {k['ops_per_sec']:9.0f} ops/s (p99 {k['p99_us']} µs)   ratio {k['ops_per_sec'] / m['ops_per_sec']:.1f}x")
PY
done
