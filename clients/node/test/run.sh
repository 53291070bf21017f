#!/usr/bin/env bash
# The Node launcher tests against the PACKED package: an empty temp npm project gets only the
# tarball (dist/kvmux-*.tgz, or $1), the vendor SDKs at the versions tests/sdk/node pins and a
# pinned vitest; then the node:test file and the vitest file run there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tarball=${1:-$(ls -t "$root"/dist/kvmux-*.tgz | head -n 1)}
VITEST=vitest@3.2.4
sdks=$(node -e '
  const deps = {};
  for (const v of ["tencent", "aliyun"]) Object.assign(deps, require(process.argv[1] + "/tests/sdk/node/" + v + "/package.json").dependencies);
  console.log(Object.entries(deps).map(([n, v]) => n + "@" + v).join(" "));' "$root")
project=$(mktemp -d /tmp/kvmux-node-launcher.XXXXXX)
trap 'rm -rf "$project"' EXIT
cd "$project"
printf '{ "name": "kvmux-launcher-test", "private": true }\n' > package.json
echo "installing $tarball $sdks $VITEST into $project"
start=$(date +%s.%N)
# shellcheck disable=SC2086
npm install --no-audit --no-fund --loglevel=error --save-exact "$tarball" $sdks "$VITEST"
echo "npm install took $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
cp "$here"/clients.cjs "$here"/kvmux.node-test.mjs "$here"/kvmux.vitest.test.mjs "$here"/greeting.test.mjs .
# The package's own binary: KVMUX_BIN (set by scripts/test.sh to the debug build) is not used.
unset KVMUX_BIN
# spec reporter: TAP's "ok N" lines would read as go packages in test.sh's counts.
node --test --test-reporter=spec kvmux.node-test.mjs greeting.test.mjs   # greeting: the README test
npx --no-install vitest run --reporter=verbose kvmux.vitest.test.mjs
