#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target in fuzz/ (dialect request handling and signature
# verifiers), one at a time, each from its committed seeds in fuzz/corpus/<target>/.
#
# Usage: scripts/fuzz.sh smoke [seconds]   CI: each target for 25 s (default); fails on any crash
#        scripts/fuzz.sh long  [seconds]   each target for 600 s (default)
# Env:   FUZZ_TARGETS="a b"   only these targets (default: all, from `cargo fuzz list`)
#        FUZZ_NICE=N          run under `nice -n N` (default 10: the machine is shared)
#
# Needs a nightly toolchain (cargo-fuzz passes -Z flags to rustc; on stable the script falls
# back to RUSTC_BOOTSTRAP=1). Installs cargo-fuzz with `cargo install --locked` when missing.
# Targets run without a sanitizer (`-s none`): the code under test is safe Rust, so the findings
# are panics and assertion failures, and uninstrumented runs execute several times more inputs.
# A crash leaves its input in fuzz/artifacts/<target>/ and the run fails.
# The last lines are one summary line per target: executions, coverage, result.
set -uo pipefail

cd "$(dirname "$0")/.."
MODE=${1:-smoke}
case "$MODE" in
  smoke) SECONDS_EACH=${2:-25} ;;
  long) SECONDS_EACH=${2:-600} ;;
  *) echo "usage: $0 smoke|long [seconds-per-target]" >&2; exit 2 ;;
esac
NICE=${FUZZ_NICE:-10}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

# cargo-fuzz needs nightly rustc features; prefer a real nightly.
TOOLCHAIN=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=(+nightly)
else
  echo "==> no nightly toolchain: building on stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi
fuzz() { nice -n "$NICE" cargo "${TOOLCHAIN[@]}" fuzz "$@"; }

read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo "${TOOLCHAIN[@]}" fuzz list | tr '\n' ' ')}"
echo "==> building ${#TARGETS[@]} targets: ${TARGETS[*]}"
fuzz build -s none || exit 1

LOGS=fuzz/logs
mkdir -p "$LOGS"
summary=()
failed=0
for target in "${TARGETS[@]}"; do
  echo "==> $target: ${SECONDS_EACH}s"
  log="$LOGS/$target.log"
  fuzz run -s none "$target" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="CRASH (exit $status; input in fuzz/artifacts/$target/, log $log)"
    failed=1
    grep -E 'panicked at|ERROR: libFuzzer|Test unit written' "$log" | head -5
  fi
  summary+=("fuzz $MODE $target: ${execs:-0} executions in ${SECONDS_EACH}s, ${cov:-cov: ?}, $result")
done

echo
echo "==> summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
