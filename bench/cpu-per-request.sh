#!/usr/bin/env bash
# Server CPU per request: kvmux beside a bare hyper hello-world (bench/hello-hyper, built from the
# same hyper, hyper-util and tokio as kvmux), in the same run on the same machine.
#
# For each point the script reads the server's user + system CPU (all threads, /proc/PID/stat)
# before and after the load and prints µs of server CPU per request, requests per second, and the
# ratios to the hello-world at the same number of connections:
#   hello     GET /                on bench/hello-hyper            (wrk)
#   health    GET /_kvmux/health   on kvmux                        (wrk)
#   tencent   signed EdgeKVGet of a 1 KiB value                    (wrk, one TC3-signed request replayed)
#   huawei    signed get-kv of a 1 KiB value                       (wrk, one SDK-HMAC-SHA256 request replayed)
#   aliyun    signed GetKv of a 1 KiB value                        (`kvmux bench`: its nonce is single-use,
#             so every request is signed afresh by the load generator; CPU read from /proc the same way)
#   *-kb      the same get through `kvmux bench` for tencent and huawei, to compare the aliyun row with
# at 64 keep-alive connections and at 1. TC3 and Huawei signatures stay valid for the vendors'
# freshness window (minutes), longer than a run of this script's points.
#
# Env: DURATION (seconds per point, default 5), RUNS (default 1), CONNECTIONS (default "64 1"),
# KVMUX_BIN / HELLO_BIN (skip the release build), OUT (also append the rows as JSON Lines).
# Needs wrk (Debian: apt-get install wrk) and python3. Stops every process it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
RUNS=${RUNS:-1}
CONNECTIONS=${CONNECTIONS:-"64 1"}
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
if [ -z "${KVMUX_BIN:-}" ] || [ -z "${HELLO_BIN:-}" ]; then
  cargo build --release -q -p kvmux -p hello-hyper
  release="${CARGO_TARGET_DIR:-target}/release"
  KVMUX_BIN=${KVMUX_BIN:-$release/kvmux}
  HELLO_BIN=${HELLO_BIN:-$release/hello-hyper}
fi

scratch=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 300); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.2)' "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}
# user + system ticks (USER_HZ = 100) of a process, every thread included
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

hello_port=$(free_port)
"$HELLO_BIN" "$hello_port" >/dev/null &
hello_pid=$!
pids+=("$hello_pid")
kvmux_port=$(free_port)
cat >"$scratch/kvmux.toml" <<EOF
listen = "127.0.0.1:$kvmux_port"
data_dir = "$scratch/data"
durable = false
EOF
# Request logging on, as in production (and as `kvmux bench` runs its gateway).
RUST_LOG=info "$KVMUX_BIN" serve --config "$scratch/kvmux.toml" >/dev/null &
kvmux_pid=$!
pids+=("$kvmux_pid")
wait_port "$hello_port"
wait_port "$kvmux_port"
addr="127.0.0.1:$kvmux_port"

# The containers and 1,000 keys of 1 KiB per dialect, then the replayable signed requests.
for d in tencent huawei aliyun; do
  "$KVMUX_BIN" bench --target "$addr" --dialect "$d" --op get --connections 4 --duration 1 --keys 1000 --json >/dev/null
done
for d in tencent huawei; do
  "$KVMUX_BIN" bench --target "$addr" --dialect "$d" --op get --wrk-lua >"$scratch/$d.lua"
  # One second with every reply checked (wrk exits non-zero at the first refused one).
  cat "$scratch/$d.lua" - >"$scratch/$d-check.lua" <<'EOF'
function response(status, headers, body)
  if status ~= 200 or body:find('"Error":{', 1, true) then
    io.stderr:write("refused: " .. status .. " " .. body:sub(1, 300) .. "\n")
    os.exit(3)
  end
end
EOF
  wrk -t1 -c1 -d1s -s "$scratch/$d-check.lua" "http://$addr" >/dev/null
done

# point NAME PID CONNECTIONS URL [SCRIPT]: prints "NAME CONNECTIONS REQ/S CPU_US"
point() {
  local name=$1 pid=$2 conns=$3 url=$4 script=${5:-}
  local before after out requests seconds
  before=$(ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${DURATION}s" ${script:+-s "$script"} "$url")
  after=$(ticks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx replies" >&2; echo "$out" >&2; exit 1; fi
  requests=$(awk '/requests in/{print $1}' <<<"$out")
  seconds=$(awk '/requests in/{sub(/s,/,"",$4); print $4}' <<<"$out")
  awk -v n="$name" -v c="$conns" -v r="$requests" -v s="$seconds" -v t=$((after - before)) \
    'BEGIN{printf "%s %d %.0f %.1f\n", n, c, r / s, t * 10000 / r}'
}
# kb_point NAME DIALECT CONNECTIONS: the same through `kvmux bench` (server CPU from /proc too)
kb_point() {
  "$KVMUX_BIN" bench --target "$addr" --server-pid "$kvmux_pid" --dialect "$2" --op get \
    --connections "$3" --duration "$DURATION" --keys 1000 --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); e=r["result"]["errors"]; assert e==0, r["result"]; print(sys.argv[1], sys.argv[2], round(r["result"]["ops_per_sec"]), round(r["server_cpu_us_per_op"],1))' "$1" "$3"
}

echo "# $(nproc) vCPUs, $(uname -r), $(date -u +%FT%TZ), ${DURATION}s per point, wrk -t1"
for run in $(seq 1 "$RUNS"); do
  rows="$scratch/run$run"
  : >"$rows"
  for c in $CONNECTIONS; do
    point hello "$hello_pid" "$c" "http://127.0.0.1:$hello_port/" >>"$rows"
    point health "$kvmux_pid" "$c" "http://$addr/_kvmux/health" >>"$rows"
    point tencent "$kvmux_pid" "$c" "http://$addr/" "$scratch/tencent.lua" >>"$rows"
    point huawei "$kvmux_pid" "$c" "http://$addr/" "$scratch/huawei.lua" >>"$rows"
    kb_point aliyun aliyun "$c" >>"$rows"
    kb_point tencent-kb tencent "$c" >>"$rows"
    kb_point huawei-kb huawei "$c" >>"$rows"
  done
  echo "## run $run"
  awk '
    { name[NR]=$1; conns[NR]=$2; rps[NR]=$3; cpu[NR]=$4; if ($1=="hello") { hrps[$2]=$3; hcpu[$2]=$4 } }
    END {
      printf "%-11s %5s %9s %12s %14s %13s\n", "point", "conns", "req/s", "cpu µs/req", "cpu / hello", "req/s / hello"
      for (i=1; i<=NR; i++)
        printf "%-11s %5d %9d %12.1f %13.2fx %13.2f\n", name[i], conns[i], rps[i], cpu[i], cpu[i]/hcpu[conns[i]], rps[i]/hrps[conns[i]]
    }' "$rows"
  if [ -n "${OUT:-}" ]; then
    awk -v run="$run" -v day="$(date -u +%F)" \
      '{printf "{\"day\":\"%s\",\"run\":%d,\"point\":\"%s\",\"connections\":%d,\"req_per_sec\":%d,\"server_cpu_us\":%.1f}\n", day, run, $1, $2, $3, $4}' \
      "$rows" >>"$OUT"
  fi
done
