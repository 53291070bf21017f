#!/usr/bin/env bash
# Drift guard: fails when a vendor SDK the suites install has a KV operation docs/COVERAGE.md does
# not list (Tencent TEO `EdgeKV*` actions, Alibaba ESA/DCDN `*Kv*` actions and the KV upload's
# AuthorizeFileUpload/PostObject, Huawei KVS `/v1/...` URIs), in every language: Python, Node,
# Go and Java. scripts/drift.py does the reading; this script installs the SDKs.
#
# Usage: scripts/drift.sh            the pinned SDKs, installed exactly as scripts/test.sh does
#                                    (.venv, `npm ci`, `go mod download`, Maven artifacts)
#        scripts/drift.sh --latest   the newest versions the registries serve, installed into a
#                                    temp dir (never touching the pins), plus the product SDKs
#                                    the suites do not pin (e.g. Tencent's Go and Java TEO
#                                    clients), reported as "not served" when a registry lacks
#                                    them. Exit 1 means a vendor shipped an operation kvmux
#                                    does not list: add it to the dialect (and COVERAGE.md).
#        -v                          also print every operation name found
# Exit: 0 no drift, 1 COVERAGE.md lacks an SDK operation, 2 an SDK could not be installed.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
LATEST=0
VERBOSE=()
for arg in "$@"; do
  case "$arg" in
    --latest) LATEST=1 ;;
    -v) VERBOSE=(-v) ;;
    *) echo "usage: scripts/drift.sh [--latest] [-v]" >&2; exit 2 ;;
  esac
done

TMP=$(mktemp -d /tmp/kvmux-drift.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ARGS=()
die() { echo "drift: $*" >&2; exit 2; }
for tool in python3 npm go mvn; do
  command -v "$tool" >/dev/null || die "$tool is needed to read the SDKs of every language"
done

# Product SDKs the suites do not pin (their product clients are not served in that language
# here, or the suite drives the vendor's generic client), checked by --latest so that the day a
# registry starts serving one its operations are compared too. One canonical name per product.
NODE_EXTRA_aliyun="@alicloud/dcdn20180115"
GO_EXTRA_tencent="github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/teo"
GO_EXTRA_aliyun="github.com/alibabacloud-go/esa-20240910/v2 github.com/alibabacloud-go/dcdn-20180115/v3"
JAVA_EXTRA_tencent="com.tencentcloudapi:tencentcloud-sdk-java-teo"
JAVA_EXTRA_aliyun="com.aliyun:esa20240910 com.aliyun:dcdn20180115"

# Package names (pins stripped) of tests/sdk/requirements-*.txt.
requirement_names() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' tests/sdk/requirements-*.txt | sed -e 's/[=<>!~;\[].*//' | grep -v '^$' | sort -u
}

# ------------------------------------------------------------------------------ pinned SDKs
pinned() {
  echo "==> installing the pinned SDKs as scripts/test.sh does"
  # The venv of scripts/test.sh's python_venv (same commands, so the suites and the guard read
  # the same files).
  [ -x .venv/bin/python ] || python3 -m venv .venv || die "python venv"
  local req dir name
  for req in tests/sdk/requirements-*.txt; do
    .venv/bin/pip install -q --disable-pip-version-check -r "$req" || die "pip install -r $req"
  done
  ARGS+=(--python "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    # npm ci only when node_modules is missing or older than the lock file (npm ci wipes it).
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in $dir"
    fi
    ARGS+=(--node "$ROOT/${dir%/}/node_modules")
  done
  for dir in tests/sdk/go/*/; do
    [ -f "$dir/go.mod" ] || continue
    (cd "$dir" && go mod download) || die "go mod download in $dir"
    ARGS+=(--go "$ROOT/${dir%/}")
  done
  for dir in tests/sdk/java/*/; do
    [ -f "$dir/pom.xml" ] || continue
    name=$(basename "$dir")
    (cd "$dir" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$TMP/java/$name" >"$TMP/mvn.log" 2>&1) ||
      { cat "$TMP/mvn.log"; die "mvn dependency:copy-dependencies in $dir"; }
    ARGS+=(--java "$TMP/java/$name")
  done
}

# ------------------------------------------------------------------------------ latest SDKs
latest() {
  echo "==> installing the newest SDK versions the registries serve into $TMP"
  local dir name pkg ver mod gav extra
  # Python: every package the requirements pin, unpinned, without dependencies (only their
  # files are read), in a throwaway venv.
  python3 -m venv "$TMP/venv" || die "python venv"
  # shellcheck disable=SC2046
  "$TMP/venv/bin/pip" install -q --disable-pip-version-check --no-deps --upgrade \
    $(requirement_names) || die "pip install of the latest SDKs"
  "$TMP/venv/bin/pip" list --format=freeze --disable-pip-version-check 2>/dev/null |
    grep -i -E '^(tencentcloud|tccli|alibabacloud|aliyun|huaweicloud)' | sed 's/^/   python  /'
  ARGS+=(--python "$("$TMP/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")

  # Node: each suite's dependencies (and the unpinned product packages) at `npm view` latest.
  for dir in tests/sdk/node/*/; do
    [ -f "$dir/package.json" ] || continue
    name=$(basename "$dir")
    extra="NODE_EXTRA_$name"
    mkdir -p "$TMP/node/$name"
    echo '{"private": true}' >"$TMP/node/$name/package.json"
    local specs=()
    for pkg in $(node -e 'const p=require(process.argv[1]); console.log(Object.keys(p.dependencies||{}).join(" "))' "$ROOT/$dir/package.json") ${!extra:-}; do
      if ver=$(npm view "$pkg" version 2>/dev/null) && [ -n "$ver" ]; then
        echo "   node    $pkg $ver"
        specs+=("$pkg@$ver")
      else
        echo "   node    $pkg: not served by the npm registry"
      fi
    done
    if [ ${#specs[@]} -gt 0 ]; then
      (cd "$TMP/node/$name" && npm install --no-audit --no-fund --loglevel=error "${specs[@]}" >/dev/null) ||
        die "npm install ${specs[*]}"
      ARGS+=(--node "$TMP/node/$name/node_modules")
    fi
  done

  # Go: each suite's direct requirements (and the unpinned product modules) at @latest, in a
  # throwaway module. The proxy alone (no direct VCS fallback) says what it serves.
  for dir in tests/sdk/go/*/; do
    [ -f "$dir/go.mod" ] || continue
    name=$(basename "$dir")
    extra="GO_EXTRA_$name"
    mkdir -p "$TMP/go/$name"
    (cd "$TMP/go/$name" && go mod init "drift.latest/$name" >/dev/null 2>&1)
    for mod in $(cd "$dir" && go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Path"] for r in json.load(sys.stdin).get("Require") or [] if not r.get("Indirect")))') ${!extra:-}; do
      if ver=$(cd "$TMP/go/$name" && GOPROXY=https://proxy.golang.org GOFLAGS=-mod=mod go list -m -f '{{.Version}}' "$mod@latest" 2>/dev/null) && [ -n "$ver" ]; then
        echo "   go      $mod $ver"
        (cd "$TMP/go/$name" && GOPROXY=https://proxy.golang.org go get "$mod@$ver" >/dev/null 2>&1) ||
          die "go get $mod@$ver"
      else
        echo "   go      $mod: not served by the Go module proxy"
      fi
    done
    ARGS+=(--go "$TMP/go/$name")
  done

  # Java: each suite's non-test dependencies (and the unpinned product artifacts) at their
  # RELEASE version (maven-metadata re-read with -U), only the artifact itself.
  for dir in tests/sdk/java/*/; do
    [ -f "$dir/pom.xml" ] || continue
    name=$(basename "$dir")
    extra="JAVA_EXTRA_$name"
    mkdir -p "$TMP/java/$name"
    for gav in $(python3 - "$dir/pom.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
for d in ET.parse(sys.argv[1]).getroot().findall("m:dependencies/m:dependency", ns):
    if (d.findtext("m:scope", "", ns) or "compile") != "test":
        print(d.findtext("m:groupId", "", ns) + ":" + d.findtext("m:artifactId", "", ns))
PY
    ) ${!extra:-}; do
      if (cd "$TMP" && mvn -q -B -U dependency:copy -Dartifact="$gav:RELEASE" \
        -DoutputDirectory="$TMP/java/$name" >"$TMP/mvn.log" 2>&1); then
        echo "   java    $gav $(cd "$TMP/java/$name" && ls "${gav#*:}"-[0-9]*.jar | sed -e "s/^${gav#*:}-//" -e 's/\.jar$//')"
      else
        echo "   java    $gav: not served by Maven Central"
      fi
    done
    ARGS+=(--java "$TMP/java/$name")
  done
}

if [ "$LATEST" -eq 1 ]; then
  latest
  label=latest
else
  pinned
  label=pinned
fi
python3 scripts/drift.py --coverage docs/COVERAGE.md --label "$label" "${VERBOSE[@]}" "${ARGS[@]}"
