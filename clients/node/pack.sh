#!/usr/bin/env bash
# Packs the npm package `kvmux` into dist/ (repository root): copies the release binary
# (target/release/kvmux, built with `cargo build --release -p kvmux` when absent) into
# bin/linux-x64/, stripped of its debug info, and runs `npm pack`. Prints the tarball's path last.
# Usage: clients/node/pack.sh [DEST]   (DEST: where the tarball goes; default dist/)
# Env: KVMUX_RELEASE_BIN  another binary to pack (e.g. a musl build).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${KVMUX_RELEASE_BIN:-$root/target/release/kvmux}
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --release -p kvmux)
fi
platform=linux-x64
dest=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
mkdir -p "$here/bin/$platform"
rm -f "$here/bin/$platform/kvmux"
if command -v strip >/dev/null; then
  strip -o "$here/bin/$platform/kvmux" "$bin"
else
  cp "$bin" "$here/bin/$platform/kvmux"
fi
chmod 755 "$here/bin/$platform/kvmux"
"$here/bin/$platform/kvmux" --version >&2
cd "$here"
tarball=$(npm pack --silent --pack-destination "$dest" | tail -n 1)
echo "$dest/$tarball"
