#!/usr/bin/env bash
# Start-up time as a test harness sees it: from spawning `kvmux serve --listen 127.0.0.1:0
# --ready-file F` to F existing (written by rename once the listener accepts), N starts per
# storage, each stopped with SIGTERM before the next. Prints min / median / max in ms.
#
# Usage: bench/startup.sh [N]   (default 50; uses the release binary, built first)
#        KVMUX_BIN=path         time another binary instead (skips the build)
# The redb starts each get a fresh data dir (the first start creates the file: the worst case).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
if [ -z "${KVMUX_BIN:-}" ]; then
  cargo build --release -p kvmux >&2
  KVMUX_BIN=$PWD/target/release/kvmux
fi
export KVMUX_BIN N
python3 - <<'PY'
import os, signal, statistics, subprocess, tempfile, time

BIN, N = os.environ["KVMUX_BIN"], int(os.environ["N"])


def once(args, workdir):
    ready = os.path.join(workdir, "ready.json")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--ready-file", ready, *args],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("KVMUX_")},
    )
    # Poll every 0.1 ms: the polling adds at most that to a figure.
    while not os.path.exists(ready):
        if proc.poll() is not None:
            raise SystemExit(f"kvmux exited with {proc.returncode} before it was ready")
        time.sleep(0.0001)
    elapsed = (time.perf_counter() - t0) * 1000
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    return elapsed


for name, args in [("memory", ["--storage", "memory"]), ("redb", ["--data-dir", "data"])]:
    times = []
    for _ in range(N):
        with tempfile.TemporaryDirectory(prefix="kvmux-startup-") as d:
            times.append(once(args, d))
    print(f"{name:6} starts={N} min={min(times):.1f} ms median={statistics.median(times):.1f} ms "
          f"max={max(times):.1f} ms")
PY
