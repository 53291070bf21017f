#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target in fuzz/ (dialect request handling and signature
# verifiers), one at a time, each from its committed seeds in fuzz/corpus/<target>/.
#
# Usage: scripts/fuzz.sh smoke [seconds]   CI: each target for 25 s (default); fails on any crash
#        scripts/fuzz.sh long  [seconds]   each target for 600 s (default)
#        scripts/fuzz.sh build             only build every target (scripts/test.sh does this in
#                                          the background while other suites run)
# Env:   FUZZ_TARGETS="a b"   only these targets (default: all, from `cargo fuzz list`)
#        FUZZ_NICE=N          run under `nice -n N` (default 10: the machine is shared)
#        FUZZ_TOOLCHAIN=T     build with `cargo +T` (default: nightly if installed, else stable);
#                             any toolchain but nightly gets RUSTC_BOOTSTRAP=1
#        FUZZ_TARGET_DIR=D    cargo's target dir for the fuzz build (default fuzz/target)
#
# Needs a nightly toolchain (cargo-fuzz passes -Z flags to rustc; on stable the script falls
# back to RUSTC_BOOTSTRAP=1). Installs cargo-fuzz with `cargo install --locked` when missing.
# Targets run without a sanitizer (`-s none`): the code under test is safe Rust, so the findings
# are panics and assertion failures, and uninstrumented runs execute several times more inputs.
# A crash leaves its input in fuzz/artifacts/<target>/ and the run fails.
# The last lines are one summary line per target: executions, coverage, result.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
MODE=${1:-smoke}
case "$MODE" in
  smoke) SECONDS_EACH=${2:-25} ;;
  long) SECONDS_EACH=${2:-600} ;;
  build) ;;
  *) echo "usage: $0 smoke|long [seconds-per-target] | build" >&2; exit 2 ;;
esac
NICE=${FUZZ_NICE:-10}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

# cargo-fuzz needs nightly rustc features; prefer a real nightly.
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  TOOLCHAIN=(+"$FUZZ_TOOLCHAIN")
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=(+nightly)
else
  TOOLCHAIN=()
fi
if [ "${TOOLCHAIN[*]}" != "+nightly" ]; then
  echo "==> building with ${TOOLCHAIN[*]:-the default toolchain} and RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi
TARGET_DIR=()
[ -n "${FUZZ_TARGET_DIR:-}" ] && TARGET_DIR=(--target-dir "$FUZZ_TARGET_DIR")
fuzz() { nice -n "$NICE" cargo "${TOOLCHAIN[@]}" fuzz "$@"; }

read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo "${TOOLCHAIN[@]}" fuzz list | tr '\n' ' ')}"
echo "==> building ${#TARGETS[@]} targets: ${TARGETS[*]}"
fuzz build -s none "${TARGET_DIR[@]}" || exit 1
[ "$MODE" = build ] && exit 0

LOGS=fuzz/logs
mkdir -p "$LOGS"
summary=()
failed=0
for target in "${TARGETS[@]}"; do
  echo "==> $target: ${SECONDS_EACH}s"
  log="$LOGS/$target.log"
  fuzz run -s none "${TARGET_DIR[@]}" "$target" -- -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1
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
