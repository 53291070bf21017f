#!/usr/bin/env python3
"""Drift guard: the operations the installed vendor SDKs can call versus docs/COVERAGE.md.

kvmux claims per-operation parity with three vendors' KV APIs; COVERAGE.md is the list of what it
serves (and the dialect crates' own tests keep that list equal to their routers). What nothing
else notices is a vendor shipping a new operation: this script reads the SDK sources exactly as
the suites installed them and extracts, per language,

  * Tencent TEO 2022-09-01: the `EdgeKV*` actions (and any KV-namespace action),
  * Alibaba ESA 2024-09-10 and DCDN 2018-01-15: every action whose name contains `Kv`, plus the
    upload path their `*Advance` methods use (OpenPlatform `AuthorizeFileUpload`, OSS
    `PostObject`),
  * Huawei KVS: every `/v1/<op>` URI,

then prints one line per language and vendor and exits 1 when an SDK has an operation that
COVERAGE.md lacks. The reverse (COVERAGE.md lists something no scanned SDK has) is only a warning:
several SDKs are not served in every language here, and kvmux may keep serving an operation a
vendor dropped.

The extraction works on the generated client sources (Python, Node, Go) and on the string
constants of the generated Java client classes, with one pattern per language and product. The
patterns are anchored on the generators' fixed call shapes (`self.call("X"`, `action = 'X'`,
`WithApiInfo("teo", APIVersion, "X")`, `"resource_path": "/v1/x"`), so a product with zero
matches is reported as absent rather than silently counted as empty.

Usage: drift.py --coverage docs/COVERAGE.md [-v] [--python SITE_PACKAGES] [--node NODE_MODULES]
                [--go MODULE_DIR] [--java JAR_DIR] [--label pinned|latest]
Each source option may repeat. Go module dirs are resolved with `go list -m all` (read-only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field

LANGS = ("python", "node", "go", "java")


@dataclass
class Rule:
    """One way to read operation names out of one kind of SDK file.

    `path` is matched (search) against the file's path inside its package; `kind` says how the
    file is read: `text` applies `pattern` (group 1 is the name, or `name` when given) to the
    source, `json_actions` takes the keys of the file's `actions` object (tccli's api.json),
    `class_strings` takes the Java class's string constants that fully match `pattern`,
    `class_actions` the string constants `X` for which the class also has a method
    `lcfirst(X)WithOptions` (Alibaba's Java clients, whose string constants include parameter
    names such as `KvList`)."""

    lang: str
    path: str
    kind: str
    pattern: str = ""
    name: str = ""


@dataclass
class Product:
    vendor: str
    key: str  # the product name used in output and in COVERAGE.md's product column
    title: str
    keep: str  # regex an extracted name must contain to count as a KV operation
    rules: list[Rule]
    # What to say per language when no installed package holds the product.
    absent: dict[str, str] = field(default_factory=dict)


_ALI_UPLOAD_TEXT = [
    # The *Advance methods' upload: an OpenPlatform AuthorizeFileUpload call (inline in the new
    # generation, through the OpenPlatform client in the old one), then an OSS form POST.
    (r"""action\s*[:=]\s*["']AuthorizeFileUpload["']|authorize_file_upload|authorizeFileUpload""",
     "AuthorizeFileUpload"),
    (r"_post_ossobject|_postOSSObject|\bpostObject\b|\bpost_object\b|PostObject\(", "PostObject"),
]


def _upload_rules(client_paths: dict[str, str]) -> list[Rule]:
    rules = []
    for lang, path in client_paths.items():
        for pattern, name in _ALI_UPLOAD_TEXT:
            rules.append(Rule(lang, path, "text", pattern, name))
    return rules


_ALI_CLIENTS = {
    "python": r"alibabacloud_(esa20240910|dcdn20180115)/client\.py$",
    "node": r"@alicloud/(esa20240910|dcdn20180115)/dist/client\.js$",
    "go": r"alibabacloud-go/(esa-20240910|dcdn-20180115)(/v\d+)?@[^/]+/client/client\.go$",
}

PRODUCTS = [
    Product(
        "tencent",
        "TEO",
        "TEO 2022-09-01",
        r"EdgeKV|KVNamespace|KvNamespace",
        [
            Rule("python", r"tencentcloud/teo/v20220901/teo_client\.py$", "text",
                 r"""self\.call\(\s*["'](\w+)["']"""),
            Rule("python", r"tccli/services/teo/v20220901/api\.json$", "json_actions"),
            Rule("node", r"tencentcloud/services/teo/v20220901/teo_client\.js$", "text",
                 r"""this\.request\(\s*["'](\w+)["']"""),
            Rule("go", r"tencentcloud/teo@[^/]+/v20220901/client\.go$", "text",
                 r"""WithApiInfo\(\s*"teo"\s*,\s*APIVersion\s*,\s*"(\w+)"\s*\)"""),
            Rule("java", r"com/tencentcloudapi/teo/v20220901/TeoClient\.class$", "class_strings",
                 r"\w*EdgeKV\w*|\w*KVNamespace\w*"),
        ],
    ),
    Product(
        "aliyun",
        "ESA",
        "ESA 2024-09-10",
        r"Kv",
        [
            Rule("python", r"alibabacloud_esa20240910/client\.py$", "text",
                 r"""action\s*=\s*['"](\w+)['"]"""),
            Rule("node", r"@alicloud/esa20240910/dist/client\.js$", "text",
                 r"""action\s*:\s*["'](\w+)["']"""),
            Rule("go", r"alibabacloud-go/esa-20240910(/v\d+)?@[^/]+/client/client\.go$", "text",
                 r"""Action:\s*(?:tea|dara)\.String\("(\w+)"\)"""),
            Rule("java", r"com/aliyun/esa20240910/Client\.class$", "class_actions"),
        ],
    ),
    Product(
        "aliyun",
        "DCDN",
        "DCDN 2018-01-15",
        r"Kv",
        [
            Rule("python", r"alibabacloud_dcdn20180115/client\.py$", "text",
                 r"""action\s*=\s*['"](\w+)['"]"""),
            Rule("python", r"aliyunsdkdcdn/request/v20180115/\w+Request\.py$", "text",
                 r"""RpcRequest\.__init__\(\s*self\s*,\s*'dcdn'\s*,\s*'2018-01-15'\s*,\s*'(\w+)'"""),
            Rule("node", r"@alicloud/dcdn20180115/dist/client\.js$", "text",
                 r"""action\s*:\s*["'](\w+)["']"""),
            Rule("go", r"alibabacloud-go/dcdn-20180115(/v\d+)?@[^/]+/client/client\.go$", "text",
                 r"""Action:\s*(?:tea|dara)\.String\("(\w+)"\)"""),
            Rule("java", r"com/aliyun/dcdn20180115/Client\.class$", "class_actions"),
        ],
    ),
    Product(
        "aliyun",
        "upload",
        "KV upload (OpenPlatform AuthorizeFileUpload + OSS PostObject)",
        r".",
        _upload_rules(_ALI_CLIENTS)
        + [Rule("java", r"com/aliyun/(esa20240910|dcdn20180115)/Client\.class$", "class_strings",
                r"AuthorizeFileUpload")],
    ),
    Product(
        "huawei",
        "KVS",
        "KVS v1",
        r"^/v1/",
        [
            Rule("python", r"huaweicloudsdkkvs/v1/\w+\.py$", "text",
                 r"""["']resource_path["']\s*:\s*["'](/v1/[\w-]+)["']"""),
            Rule("node", r"huaweicloud-sdk-kvs/.*\.js$", "text", r"""["'](/v1/[\w-]+)["']"""),
            Rule("go", r"huaweicloud-sdk-go-v3@[^/]+/services/kvs/v1/kvs_meta\.go$", "text",
                 r"""WithPath\("(/v1/[\w-]+)"\)"""),
            Rule("java", r"com/huaweicloud/sdk/kvs/v1/\w+\.class$", "class_strings",
                 r"/v1/[\w-]+"),
        ],
        absent={"node": "Huawei publishes no KVS SDK for Node (npm has none)"},
    ),
]

VENDOR_TITLES = {"tencent": "Tencent", "aliyun": "Aliyun", "huawei": "Huawei"}


# ------------------------------------------------------------------------------- COVERAGE.md


def coverage(path: str) -> dict[str, set[str]]:
    """Product key -> operation names listed in COVERAGE.md (Huawei ones as `/v1/<op>`).

    Reads the same marker-delimited tables the dialect crates' coverage tests read; Aliyun rows
    are split by their product column (ESA, DCDN, and the OpenPlatform / OSS upload rows)."""
    text = open(path, encoding="utf-8").read()
    out: dict[str, set[str]] = {p.key: set() for p in PRODUCTS}
    for vendor in ("tencent", "aliyun", "huawei"):
        begin, end = f"<!-- {vendor}:begin -->", f"<!-- {vendor}:end -->"
        if begin not in text or end not in text:
            sys.exit(f"drift: {path} lacks the {vendor} markers")
        section = text[text.index(begin):text.index(end)]
        for line in section.splitlines():
            if not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            name = cells[0].strip("`")
            if vendor == "tencent":
                out["TEO"].add(name)
            elif vendor == "huawei":
                out["KVS"].add("/v1/" + name)
            else:
                product = cells[1] if len(cells) > 1 else ""
                if product.startswith("ESA"):
                    out["ESA"].add(name)
                elif product.startswith("DCDN"):
                    out["DCDN"].add(name)
                else:
                    out["upload"].add(name)
    return out


# ----------------------------------------------------------------------------------- sources


@dataclass
class File:
    lang: str
    package: str  # "name version"
    path: str  # path inside the package's root, with '/' separators
    read: callable  # () -> bytes


def python_files(site: str):
    """Every file an installed distribution's RECORD lists, attributed to that distribution (so
    the report can name the package and version a name came from)."""
    for entry in sorted(os.listdir(site)):
        if not entry.endswith(".dist-info"):
            continue
        meta = os.path.join(site, entry, "METADATA")
        record = os.path.join(site, entry, "RECORD")
        if not (os.path.exists(meta) and os.path.exists(record)):
            continue
        name = version = "?"
        with open(meta, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Version:"):
                    version = line.split(":", 1)[1].strip()
                elif not line.strip():
                    break
        with open(record, encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if not row or row[0].endswith(".pyc") or row[0].startswith(".."):
                    continue
                full = os.path.join(site, row[0])
                if os.path.isfile(full):
                    yield File("python", f"{name} {version}", row[0],
                               lambda full=full: open(full, "rb").read())


def node_files(root: str):
    """Files under a node_modules tree, attributed to the nearest package.json."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "package.json" not in filenames:
            continue
        try:
            with open(os.path.join(dirpath, "package.json"), encoding="utf-8") as f:
                pkg = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(pkg, dict) or "name" not in pkg:
            continue
        label = f"{pkg['name']} {pkg.get('version', '?')}"
        for sub, subdirs, names in os.walk(dirpath):
            # Nested packages are visited by the outer walk.
            subdirs[:] = sorted(d for d in subdirs if d != "node_modules")
            for n in names:
                if n.endswith((".js", ".cjs", ".mjs")):
                    full = os.path.join(sub, n)
                    rel = os.path.relpath(full, root).replace(os.sep, "/")
                    yield File("node", label, rel, lambda full=full: open(full, "rb").read())


def go_files(moddir: str):
    """The .go files of every module the suite's go.mod needs, as `go list -m all` resolves it
    (module cache paths such as github.com/x/y@v1.2.3/...)."""
    env = dict(os.environ, GOFLAGS="-mod=mod")
    res = subprocess.run(["go", "list", "-m", "-f", "{{.Path}}\t{{.Version}}\t{{.Dir}}", "all"],
                         cwd=moddir, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"drift: go list -m all in {moddir} failed:\n{res.stderr}")
    for line in res.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            continue  # the main module
        path, version, d = parts
        for sub, subdirs, names in os.walk(d):
            subdirs.sort()
            for n in names:
                if n.endswith(".go") and not n.endswith("_test.go"):
                    full = os.path.join(sub, n)
                    rel = f"{path}@{version}/" + os.path.relpath(full, d).replace(os.sep, "/")
                    yield File("go", f"{path} {version}", rel,
                               lambda full=full: open(full, "rb").read())


def java_files(jardir: str):
    """The .class entries of every jar in a directory (a dependency:copy-dependencies output)."""
    for n in sorted(os.listdir(jardir)):
        if not n.endswith(".jar"):
            continue
        jar = os.path.join(jardir, n)
        m = re.match(r"(.+?)-(\d[\w.\-]*)\.jar$", n)
        label = f"{m.group(1)} {m.group(2)}" if m else n
        with zipfile.ZipFile(jar) as z:
            for entry in z.namelist():
                if entry.endswith(".class"):
                    yield File("java", label, entry,
                               lambda jar=jar, entry=entry: zipfile.ZipFile(jar).read(entry))


def class_constants(data: bytes) -> tuple[list[str], set[str]]:
    """(string constants, all UTF-8 constants) of a Java class file's constant pool.

    The action names of the generated Java clients are string literals (`"EdgeKVPut"`,
    `"/v1/put-kv"`), which the JVM keeps as CONSTANT_String entries pointing at CONSTANT_Utf8
    entries; method names are CONSTANT_Utf8 entries too."""
    if data[:4] != b"\xca\xfe\xba\xbe":
        return [], set()
    count = struct.unpack_from(">H", data, 8)[0]
    utf8: dict[int, str] = {}
    strings: list[int] = []
    pos, i = 10, 1
    sizes = {3: 4, 4: 4, 5: 8, 6: 8, 7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4, 15: 3, 16: 2,
             17: 4, 18: 4, 19: 2, 20: 2}
    while i < count:
        tag = data[pos]
        if tag == 1:
            length = struct.unpack_from(">H", data, pos + 1)[0]
            utf8[i] = data[pos + 3:pos + 3 + length].decode("utf-8", errors="replace")
            pos += 3 + length
        elif tag in sizes:
            if tag == 8:
                strings.append(struct.unpack_from(">H", data, pos + 1)[0])
            pos += 1 + sizes[tag]
        else:
            return [], set()  # unknown tag: not a class file this parser understands
        i += 2 if tag in (5, 6) else 1
    return [utf8[s] for s in strings if s in utf8], set(utf8.values())


# ---------------------------------------------------------------------------------- extract


def extract(rule: Rule, data: bytes) -> set[str]:
    if rule.kind == "text":
        text = data.decode("utf-8", errors="replace")
        if rule.name:
            return {rule.name} if re.search(rule.pattern, text) else set()
        return {m.group(1) for m in re.finditer(rule.pattern, text)}
    if rule.kind == "json_actions":
        try:
            doc = json.loads(data)
        except ValueError:
            return set()
        actions = doc.get("actions") if isinstance(doc, dict) else None
        return set(actions) if isinstance(actions, dict) else set()
    strings, names = class_constants(data)
    if rule.kind == "class_strings":
        return {s for s in strings if re.fullmatch(rule.pattern, s)}
    if rule.kind == "class_actions":
        return {s for s in strings if re.fullmatch(r"[A-Z]\w*", s)
                and (s[0].lower() + s[1:] + "WithOptions") in names}
    raise ValueError(rule.kind)


def self_test(coverage_path: str) -> int:
    """Proves the guard can fail: fake SDK trees (a Python ESA client, a Node TEO client, a Java
    KVS class file) that each carry one operation more than a copy of COVERAGE.md lists must
    give exit 1 naming exactly those operations, and must pass once nothing is missing."""
    import shutil
    import tempfile

    def java_class(strings: list[str], utf8_only: list[str]) -> bytes:
        pool, n = b"", 1
        for s in strings:
            raw = s.encode()
            pool += b"\x01" + struct.pack(">H", len(raw)) + raw + b"\x08" + struct.pack(">H", n)
            n += 2
        for s in utf8_only:
            raw = s.encode()
            pool += b"\x01" + struct.pack(">H", len(raw)) + raw
            n += 1
        return b"\xca\xfe\xba\xbe\x00\x00\x00\x3d" + struct.pack(">H", n) + pool

    def run(cov: str, root: str) -> tuple[int, str]:
        res = subprocess.run([sys.executable, __file__, "--coverage", cov, "--label", "self-test",
                              "--python", os.path.join(root, "site"),
                              "--node", os.path.join(root, "node_modules"),
                              "--java", os.path.join(root, "jars")],
                             capture_output=True, text=True)
        return res.returncode, res.stdout + res.stderr

    root = tempfile.mkdtemp(prefix="kvmux-drift-selftest.")
    try:
        cov = coverage(coverage_path)
        esa = sorted(cov["ESA"])
        site = os.path.join(root, "site")
        os.makedirs(os.path.join(site, "alibabacloud_esa20240910"))
        os.makedirs(os.path.join(site, "alibabacloud_esa20240910-9.9.9.dist-info"))
        body = "".join(f"        req = open_api_util_models.Params(\n            action = '{a}',\n"
                       for a in esa + ["RenameKv", "DescribeRegions"])
        with open(os.path.join(site, "alibabacloud_esa20240910", "client.py"), "w") as f:
            f.write(body)
        with open(os.path.join(site, "alibabacloud_esa20240910-9.9.9.dist-info", "METADATA"),
                  "w") as f:
            f.write("Name: alibabacloud-esa20240910\nVersion: 9.9.9\n\n")
        with open(os.path.join(site, "alibabacloud_esa20240910-9.9.9.dist-info", "RECORD"),
                  "w") as f:
            f.write("alibabacloud_esa20240910/client.py,,\n"
                    "alibabacloud_dcdn20180115/client.py,,\n")
        # A DCDN client in a shape the patterns do not know: must fail, not read as "no DCDN".
        os.makedirs(os.path.join(site, "alibabacloud_dcdn20180115"))
        with open(os.path.join(site, "alibabacloud_dcdn20180115", "client.py"), "w") as f:
            f.write("Params(action: 'PutDcdnKv')\n")
        teo = os.path.join(root, "node_modules", "tencentcloud-sdk-nodejs-teo")
        os.makedirs(os.path.join(teo, "tencentcloud/services/teo/v20220901"))
        with open(os.path.join(teo, "package.json"), "w") as f:
            json.dump({"name": "tencentcloud-sdk-nodejs-teo", "version": "9.9.9"}, f)
        with open(os.path.join(teo, "tencentcloud/services/teo/v20220901/teo_client.js"),
                  "w") as f:
            f.write("".join(f'return this.request("{a}", req, cb);\n'
                            for a in sorted(cov["TEO"]) + ["EdgeKVCopy", "DescribeZones"]))
        os.makedirs(os.path.join(root, "jars"))
        with zipfile.ZipFile(os.path.join(root, "jars", "huaweicloud-sdk-kvs-9.9.9.jar"),
                             "w") as z:
            z.writestr("com/huaweicloud/sdk/kvs/v1/KvsMeta.class",
                       java_class(sorted(cov["KVS"]) + ["/v1/transact-get-kv", "PutKv"],
                                  ["putKvWithOptions"]))
        code, out = run(coverage_path, root)
        want = ["ESA RenameKv [alibabacloud-esa20240910 9.9.9]",
                "TEO EdgeKVCopy [tencentcloud-sdk-nodejs-teo 9.9.9]",
                "KVS /v1/transact-get-kv [huaweicloud-sdk-kvs 9.9.9]",
                "DCDN: client files in alibabacloud-esa20240910 9.9.9 but no operation extracted",
                "12 checks (4 languages x 3 vendors), 9 passed, 3 failed"]
        problems = [w for w in want if w not in out]
        if code != 1 or problems or "DescribeRegions" in out or "DescribeZones" in out:
            print(out)
            print(f"drift self-test: FAIL (exit {code}, expected 1; absent: {problems})")
            return 1
        # With those three listed, the same trees pass.
        text = open(coverage_path, encoding="utf-8").read()
        text = text.replace("<!-- tencent:end -->", "| `EdgeKVCopy` | none | |\n<!-- tencent:end -->")
        text = text.replace("<!-- aliyun:end -->",
                            "| `RenameKv` | ESA | none | |\n<!-- aliyun:end -->")
        text = text.replace("<!-- huawei:end -->", "| `transact-get-kv` | none | |\n<!-- huawei:end -->")
        cov2 = os.path.join(root, "COVERAGE.md")
        with open(cov2, "w", encoding="utf-8") as f:
            f.write(text)
        os.remove(os.path.join(site, "alibabacloud_dcdn20180115", "client.py"))
        code, out = run(cov2, root)
        if code != 0 or "MISSING" in out:
            print(out)
            print(f"drift self-test: FAIL (exit {code} with complete coverage, expected 0)")
            return 1
        print("drift self-test: ok (3 planted operations and 1 unreadable client caught; "
              "passes once listed)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", required=True)
    ap.add_argument("--self-test", action="store_true",
                    help="check that planted SDK operations make the guard fail")
    ap.add_argument("--label", default="pinned")
    ap.add_argument("-v", dest="verbose", action="store_true", help="list every name found")
    for lang in LANGS:
        ap.add_argument(f"--{lang}", action="append", default=[])
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.coverage)

    covered = coverage(args.coverage)
    walkers = {"python": python_files, "node": node_files, "go": go_files, "java": java_files}
    # found[lang][product key] = {name: {package labels}}
    found: dict[str, dict[str, dict[str, set[str]]]] = {l: {} for l in LANGS}
    scanned = {l: bool(getattr(args, l)) for l in LANGS}
    # clients[lang][product key] = packages holding a file an operation rule applies to: such a
    # client yielding no operation means the generator changed shape, which must not read as
    # "this SDK has no such product".
    clients: dict[str, dict[str, set[str]]] = {l: {} for l in LANGS}
    for lang in LANGS:
        rules = [(p, r) for p in PRODUCTS for r in p.rules if r.lang == lang]
        compiled = [(p, r, re.compile(r.path)) for p, r in rules]
        for root in getattr(args, lang):
            for f in walkers[lang](root):
                for p, r, path_re in compiled:
                    if not path_re.search(f.path):
                        continue
                    if not r.name:
                        clients[lang].setdefault(p.key, set()).add(f.package)
                    for name in extract(r, f.read()):
                        if re.search(p.keep, name):
                            found[lang].setdefault(p.key, {}).setdefault(name, set()).add(
                                f.package)

    missing_total = 0
    checks = failed_checks = operations = 0
    seen_anywhere: dict[str, set[str]] = {p.key: set() for p in PRODUCTS}
    print(f"drift guard ({args.label} SDKs) against {args.coverage}")
    for lang in LANGS:
        for vendor in ("tencent", "aliyun", "huawei"):
            parts, missing = [], []
            for p in (p for p in PRODUCTS if p.vendor == vendor):
                names = found[lang].get(p.key, {})
                if not scanned[lang]:
                    parts.append(f"{p.key}: not scanned")
                    continue
                if not names and p.key in clients[lang]:
                    pkgs = ", ".join(sorted(clients[lang][p.key]))
                    parts.append(f"{p.key}: client files in {pkgs} but no operation extracted")
                    missing.append(f"{p.key} extraction pattern outdated for {pkgs}")
                    continue
                if not names:
                    parts.append(f"{p.key}: " + p.absent.get(
                        lang, f"absent from the {lang} packages scanned"))
                    continue
                seen_anywhere[p.key] |= set(names)
                packages = sorted({pkg for pkgs in names.values() for pkg in pkgs})
                parts.append(f"{p.key}: {len(names)} ({', '.join(packages)})")
                if args.verbose:
                    parts[-1] += " [" + " ".join(sorted(names)) + "]"
                for n in sorted(set(names) - covered[p.key]):
                    missing.append(f"{p.key} {n} [{', '.join(sorted(names[n]))}]")
            missing_total += len(missing)
            checks += 1
            failed_checks += bool(missing)
            operations += sum(len(found[lang].get(p.key, {})) for p in PRODUCTS
                              if p.vendor == vendor)
            verdict = ("MISSING from COVERAGE.md: " + "; ".join(missing)) if missing else \
                "all in COVERAGE.md"
            print(f"  {lang:<6} {VENDOR_TITLES[vendor]:<7} {' | '.join(parts)} -> {verdict}")

    for p in PRODUCTS:
        extra = sorted(covered[p.key] - seen_anywhere[p.key])
        if extra:
            print(f"  warning: COVERAGE.md lists {p.key} operation(s) no scanned SDK has: "
                  + ", ".join(extra))
    print(f"drift: {checks} checks ({len(LANGS)} languages x 3 vendors), "
          f"{checks - failed_checks} passed, {failed_checks} failed; "
          f"{operations} SDK operations read")
    if missing_total:
        print(f"drift: FAIL, {missing_total} SDK operation(s) missing from COVERAGE.md or unreadable")
        return 1
    print("drift: ok, every operation the scanned SDKs have is in COVERAGE.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
