#!/usr/bin/env bash
# Every figure in docs/BENCHMARKS.md, in one run on one machine: writes JSON Lines to
# docs/bench/results.jsonl, draws docs/bench/throughput.svg, and prints what the doc quotes.
# Run on an otherwise idle machine. Env: DURATION (seconds per point, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
cargo build --release -q -p kvmux
KVMUX=target/release/kvmux
mkdir -p docs/bench
out=docs/bench/results.jsonl
: >"$out"
run() { "$KVMUX" bench --json --duration "$DURATION" "$@" | tee -a "$out"; }

echo "# machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(date -u +%F)"
for d in tencent aliyun huawei; do
  for c in 1 4 16 64; do
    if [ "$c" = 64 ] || [ "$c" = 1 ]; then run --dialect "$d" --op get --connections "$c" --ceiling; else run --dialect "$d" --op get --connections "$c"; fi
  done
  run --dialect "$d" --op put --connections 64 --durable
  run --dialect "$d" --op batch --connections 16
  run --dialect "$d" --op scan --connections 16
done
run --dialect tencent --op get --connections 16 --keys 1000000
"$KVMUX" bench-plot --input "$out" --output docs/bench/throughput.svg
echo "# moto"
DURATION="$DURATION" bench/compare-moto.sh
echo "# 25 MB high-capacity put"
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/sdk/requirements-aliyun.txt; }
KVMUX_BIN="$PWD/$KVMUX" .venv/bin/python bench/hc_rss.py
