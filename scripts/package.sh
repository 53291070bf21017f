#!/usr/bin/env bash
# Builds kvmux's release artifacts into dist/ from a checkout, checks each one, and prints their
# sizes (issue 16):
#
#   dist/kvmux-VERSION-linux-x86_64   the release binary (`cargo build --release -p kvmux`, with
#                                     its line tables, for readable backtraces)
#   dist/kvmux-VERSION-py3-none-manylinux_2_NN_x86_64.whl
#                                     the Python wheel (clients/python, built by maturin with
#                                     `bindings = "bin"`): the stripped binary on PATH as `kvmux`,
#                                     the `kvmux` package (Server, SDK client factories) and its
#                                     pytest plugin
#   dist/kvmux-VERSION.tgz            the npm tarball (clients/node/pack.sh, given the same
#                                     release binary in KVMUX_RELEASE_BIN; skipped, saying so,
#                                     while clients/node does not exist)
#
# The binary is compiled once: maturin finds cargo's release build fresh (same profile and
# features; `strip = false` in pyproject.toml, since a strip flag would make it compile the
# kvmux crate again) and the wheel then gets the stripped copy (`wheel unpack` / `wheel pack`,
# which rewrites RECORD). Each artifact is checked: the wheel is installed into a fresh venv
# (offline: --no-index) whose `kvmux --version` must print this version; the npm tarball into an
# empty npm project, likewise. The binary is glibc-linked (x86_64-unknown-linux-gnu): the musl
# target is not installed here and rustup cannot fetch it, so the wheel's manylinux tag is the
# newest glibc symbol version the binary needs; `ldd` and that version are printed.
#
# Usage: scripts/package.sh            Needs: Rust, Python 3.9+ with venv, binutils (strip);
#                                      PyPI for maturin and wheel (pinned below), npm for the
#                                      tarball check.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=$ROOT/dist
WORK=$ROOT/target/package
MATURIN=maturin==1.9.0
WHEEL=wheel==0.45.1
PIP=(--disable-pip-version-check -q)

log() { printf '\n==> %s\n' "$*"; }
# size FILE: its size in bytes and MiB.
size() { python3 -c 'import os,sys; n=os.path.getsize(sys.argv[1]); print(f"{n} bytes ({n/1048576:.1f} MiB)")' "$1"; }

VERSION=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "kvmux"))')

rm -rf "$DIST" "$WORK"
mkdir -p "$DIST" "$WORK"

log "release binary (cargo build --release -p kvmux)"
cargo build --release -p kvmux
BIN=$DIST/kvmux-$VERSION-linux-x86_64
cp target/release/kvmux "$BIN"
STRIPPED=$WORK/stripped/kvmux
mkdir -p "$(dirname "$STRIPPED")"
strip -o "$STRIPPED" target/release/kvmux
echo "ldd $(basename "$BIN"):"
ldd "$BIN" | sed 's/ (0x[0-9a-f]*)//; s/^/  /'
GLIBC=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "newest glibc symbol version needed: $GLIBC (glibc-linked: no musl target here)"
[ "$("$BIN" --version)" = "kvmux $VERSION" ] || { echo "$BIN --version: $("$BIN" --version)"; exit 1; }

log "tools venv ($MATURIN, $WHEEL)"
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install "${PIP[@]}" "$MATURIN" "$WHEEL"

log "Python wheel (clients/python, maturin bindings = \"bin\")"
(cd clients/python && "$WORK/tools/bin/maturin" build --release --out "$WORK/wheel-raw")
raw=$(echo "$WORK"/wheel-raw/kvmux-"$VERSION"-*.whl)
"$WORK/tools/bin/wheel" unpack --dest "$WORK/unpacked" "$raw"
tree=$WORK/unpacked/kvmux-$VERSION
cp "$STRIPPED" "$tree/kvmux-$VERSION.data/scripts/kvmux"
chmod 755 "$tree/kvmux-$VERSION.data/scripts/kvmux"
"$WORK/tools/bin/wheel" pack --dest-dir "$DIST" "$tree"
WHL=$(echo "$DIST"/kvmux-"$VERSION"-*.whl)
echo "built $(basename "$WHL")"

log "check: the wheel in a fresh venv"
python3 -m venv "$WORK/check-venv"
start=$(date +%s.%N)
"$WORK/check-venv/bin/pip" install "${PIP[@]}" --no-index --no-deps "$WHL"
end=$(date +%s.%N)
INSTALL_SECS=$(python3 -c "print(f'{$end - $start:.2f}')")
got=$(env -u KVMUX_BIN "$WORK/check-venv/bin/kvmux" --version)
[ "$got" = "kvmux $VERSION" ] || { echo "the wheel's kvmux --version printed: $got"; exit 1; }
# The package finds the wheel's binary itself (no KVMUX_BIN, not the source tree's build).
found=$(cd "$WORK" && env -u KVMUX_BIN "$WORK/check-venv/bin/python" -c 'import kvmux; print(kvmux.find_binary())')
[ "$found" = "$WORK/check-venv/bin/kvmux" ] || { echo "kvmux.find_binary() found $found"; exit 1; }
echo "ok: $got on PATH of the venv (pip install of the wheel: ${INSTALL_SECS} s)"

if [ -f clients/node/pack.sh ]; then
  log "npm tarball (clients/node/pack.sh)"
  # pack.sh strips the binary it is given into bin/linux-x64/, runs `npm pack` into dist/ and
  # prints the tarball's path last.
  tgz=$(KVMUX_RELEASE_BIN="$ROOT/target/release/kvmux" bash clients/node/pack.sh | tail -n 1)
  [ -f "$tgz" ] || { echo "clients/node/pack.sh named no tarball ($tgz)"; exit 1; }
  (
    log "check: $(basename "$tgz") in an empty npm project"
    project=$WORK/npm-check
    rm -rf "$project" && mkdir -p "$project"
    (cd "$project" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "$tgz")
    got=$(cd "$project" && env -u KVMUX_BIN npx --no-install kvmux --version)
    [ "$got" = "kvmux $VERSION" ] || { echo "the npm package's kvmux --version printed: $got"; exit 1; }
    echo "ok: $got from node_modules/.bin"
  )
else
  log "npm tarball: skipped (no clients/node/pack.sh yet)"
fi

log "artifacts"
for f in "$DIST"/*; do
  printf '%-55s %s\n' "$(basename "$f")" "$(size "$f")"
done
printf '%-55s %s\n' "(stripped binary inside the packages)" "$(size "$STRIPPED")"
echo "pip install of the wheel into a fresh venv: ${INSTALL_SECS} s"
