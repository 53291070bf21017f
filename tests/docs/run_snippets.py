#!/usr/bin/env python3
"""Runs every SDK snippet in README.md and docs/*.md against a fresh kvmux, as a user would paste it.

A runnable snippet is a fenced code block whose info string carries `snippet=NAME`:

    ```python snippet=tencent-python expect=hello
    ```go snippet=huawei-go with=tests/sdk/go/huawei expect=hello
    ```python snippet=huawei-python env=HTTP_PROXY=http://127.0.0.1:9090 env=HOME=@scratch expect=hello

A renderer reads only the first word (the language) and ignores the rest. The keys:

  snippet=NAME    unique name (required)
  expect=TEXT     a line the snippet must print, compared after stripping whitespace (required)
  with=DIR        the project the snippet needs, as the prose next to it says: for Go the go.mod and
                  go.sum of DIR (the snippet becomes main.go beside them), for Java the pom.xml of
                  DIR (the snippet is Main.java, run as `java -cp <the pom's classpath> Main.java`),
                  for Node DIR/node_modules (the snippet is CommonJS, run as `node main.js` with
                  NODE_PATH there). Without it: Go gets a module with no requirements, Java the JDK
                  only. Python always runs on the repository's .venv (the pinned SDKs).
  env=NAME=VALUE  an environment variable the prose tells the user to set (repeatable); `@scratch`
                  as VALUE is a fresh empty directory (e.g. HOME for SDKs that write under ~)
  timeout=SECS    (default 300)

For each snippet the runner starts ONE fresh gateway, `target/release/kvmux serve --storage memory
--listen 127.0.0.1:0 --ready-file F` (in an empty working directory, so no config file is read),
reads its host from F, replaces every literal `127.0.0.1:9090` in the snippet and in its env
values with that host, runs the snippet with a timeout and stops the gateway. The snippet's
environment is the runner's, less every *_proxy / NO_PROXY variable and KVMUX_CONFIG, plus the
marker's env=, with target/release (`kvmux`, as after `cargo install --path crates/kvmux`) and the
.venv's bin (`tccli`, as after `pip install tccli`) first on PATH. Nothing else is set.

Unmarked SDK snippets fail the run, so a new recipe cannot dodge the test: a fenced block whose
language is one of UNMARKED_LANGS and whose text matches SDK_PATTERN (a vendor SDK package or
client name, or tccli) must carry snippet=, or test=PATH: a test file shown whole (the README's
launcher examples), which must equal the file at PATH (the launchers suite runs it). Other blocks (TOML, JSON, curl, the kvmux CLI) are not
snippets and are not run.

Usage: tests/docs/run_snippets.py [--list] [--bin PATH] [NAME ...]
  --list   extract and check the markers only; run nothing
  NAME     run only these snippets
Prints one line per snippet, then "N passed, M failed"; exits 1 on any failure.
Stdlib only; needs python3, and for the snippets node, go, java and mvn (scripts/test.sh docs
installs the SDKs first).
"""

import argparse
import collections
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLACEHOLDER = "127.0.0.1:9090"
DEFAULT_TIMEOUT = 300

LANGS = {
    "python": "python", "py": "python",
    "js": "node", "javascript": "node", "node": "node",
    "go": "go",
    "java": "java",
    "sh": "sh", "bash": "sh", "shell": "sh",
}
UNMARKED_LANGS = set(LANGS) | {"ts", "typescript", "mjs", "console"}
SDK_PATTERN = re.compile(
    r"tencentcloud|alibabacloud|@alicloud|com\.aliyun|aliyunsdk|teaopenapi|darabonba"
    r"|huaweicloud|KvsClient|CommonClient|\btccli\b"
)
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Snippet:
    def __init__(self, doc, line, lang, attrs, env, code):
        self.doc, self.line, self.lang, self.attrs, self.env, self.code = doc, line, lang, attrs, env, code
        self.name = attrs.get("snippet")
        self.kind = LANGS.get(lang)

    @property
    def where(self):
        return f"{self.doc}:{self.line}"


def blocks(path):
    """Yields (line, info, text) for every fenced block of a Markdown file, dedented by the
    indentation of its opening fence (blocks inside list items)."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        body = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j].lstrip())
            j += 1
        yield i + 1, info, "\n".join(body) + "\n"
        i = j + 1


def collect():
    """All marked snippets, and the problems found while reading them."""
    docs = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    snippets, problems = [], []
    for path in docs:
        doc = os.path.relpath(path, ROOT)
        for line, info, text in blocks(path):
            words = info.split()
            lang = words[0].lower() if words else ""
            attrs, env = {}, []
            for word in words[1:]:
                key, _, value = word.partition("=")
                if key == "env":
                    env.append(value)
                else:
                    attrs[key] = value
            if "snippet" not in attrs and "test" in attrs:
                # A test file shown whole (README: the launchers' examples): the block must be
                # that file exactly; the launchers suite runs the file.
                target = os.path.join(ROOT, attrs["test"])
                if not os.path.isfile(target):
                    problems.append(f"{doc}:{line}: test={attrs['test']}: no such file")
                elif open(target, encoding="utf-8").read() != text:
                    problems.append(f"{doc}:{line}: the block differs from {attrs['test']} (test=)")
                continue
            if "snippet" not in attrs:
                if lang in UNMARKED_LANGS and SDK_PATTERN.search(text):
                    problems.append(f"{doc}:{line}: an SDK {lang} block without snippet=NAME "
                                    f"(mark it so tests/docs/run_snippets.py runs it)")
                continue
            s = Snippet(doc, line, lang, attrs, env, text)
            if not s.name:
                problems.append(f"{s.where}: snippet= needs a name")
            elif s.kind is None:
                problems.append(f"{s.where}: snippet {s.name}: no runner for language {lang!r}")
            elif "expect" not in attrs:
                problems.append(f"{s.where}: snippet {s.name}: expect=TEXT is required")
            elif any("=" not in e for e in env):
                problems.append(f"{s.where}: snippet {s.name}: env= wants NAME=VALUE")
            elif attrs.get("with") and not os.path.isdir(os.path.join(ROOT, attrs["with"])):
                problems.append(f"{s.where}: snippet {s.name}: with={attrs['with']} is no directory")
            else:
                snippets.append(s)
    seen = collections.Counter(s.name for s in snippets)
    problems += [f"snippet name {n} is used {c} times" for n, c in seen.items() if c > 1]
    return snippets, problems


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k != "KVMUX_CONFIG"}
    return env


class Gateway:
    """One fresh memory-store kvmux on a port of its own, stopped by its PID."""

    def __init__(self, binary, scratch):
        self.dir = tempfile.mkdtemp(prefix="gw-", dir=scratch)
        self.ready = os.path.join(self.dir, "ready.json")
        self.log_path = os.path.join(self.dir, "kvmux.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", "--storage", "memory", "--listen", "127.0.0.1:0",
                 "--ready-file", self.ready],
                cwd=self.dir, env=clean_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with open(self.ready) as f:
                    self.host = json.load(f)["host"]
                return
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kvmux wrote no ready file; its log:\n{self.log_tail()}")
            time.sleep(0.01)

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def run(cmd, cwd, env, timeout):
    """Runs cmd in a process group of its own (killed whole on timeout); returns (rc, out, err)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace") + \
            f"\n(timed out after {timeout} s)"


_classpaths = {}


def java_classpath(pom_dir, work, env, timeout):
    """The pom's classpath, resolved offline when the java suite already fetched it, else online."""
    if pom_dir in _classpaths:
        return _classpaths[pom_dir]
    shutil.copy(os.path.join(ROOT, pom_dir, "pom.xml"), work)
    cp = os.path.join(work, "cp.txt")
    last = None
    for offline in (["-o"], []):
        rc, out, err = run(["mvn", "-q", "-B", *offline, "dependency:build-classpath",
                            f"-Dmdep.outputFile={cp}"], work, env, timeout)
        if rc == 0 and os.path.exists(cp):
            _classpaths[pom_dir] = open(cp).read().strip()
            return _classpaths[pom_dir]
        last = out + err
    raise RuntimeError(f"mvn could not resolve {pom_dir}/pom.xml:\n{last[-2000:]}")


def command(s, work, env, timeout):
    """Writes the snippet where its toolchain wants it and returns the command that runs it."""
    code = s.code
    with_dir = s.attrs.get("with")
    if s.kind == "python":
        python = os.path.join(ROOT, ".venv", "bin", "python")
        if not os.access(python, os.X_OK):
            raise RuntimeError("no .venv/bin/python: run scripts/test.sh docs (it makes the venv)")
        open(os.path.join(work, "main.py"), "w").write(code)
        return [python, "main.py"]
    if s.kind == "node":
        if with_dir:
            modules = os.path.join(ROOT, with_dir, "node_modules")
            if not os.path.isdir(modules):
                raise RuntimeError(f"no {with_dir}/node_modules: run npm ci there")
            env["NODE_PATH"] = modules
        open(os.path.join(work, "main.js"), "w").write(code)
        return ["node", "main.js"]
    if s.kind == "go":
        if with_dir:
            for name in ("go.mod", "go.sum"):
                if os.path.exists(os.path.join(ROOT, with_dir, name)):
                    shutil.copy(os.path.join(ROOT, with_dir, name), work)
        else:
            open(os.path.join(work, "go.mod"), "w").write("module snippet\n\ngo 1.22\n")
        open(os.path.join(work, "main.go"), "w").write(code)
        return ["go", "run", "."]
    if s.kind == "java":
        open(os.path.join(work, "Main.java"), "w").write(code)
        if with_dir:
            cp_dir = tempfile.mkdtemp(prefix="pom-", dir=work)
            return ["java", "-cp", java_classpath(with_dir, cp_dir, env, timeout), "Main.java"]
        return ["java", "Main.java"]
    if s.kind == "sh":
        open(os.path.join(work, "main.sh"), "w").write(code)
        return ["bash", "-e", "main.sh"]
    raise RuntimeError(f"no runner for {s.lang}")


def run_one(s, binary, scratch):
    """Returns (ok, seconds, detail)."""
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix=f"{s.name}-", dir=scratch)
    timeout = int(s.attrs.get("timeout", DEFAULT_TIMEOUT))
    gateway = None
    try:
        gateway = Gateway(binary, scratch)
        s.code = s.code.replace(PLACEHOLDER, gateway.host)
        env = clean_env()
        env["PATH"] = os.pathsep.join([os.path.dirname(binary), os.path.join(ROOT, ".venv", "bin"),
                                       env.get("PATH", "")])
        for item in s.env:
            name, _, value = item.partition("=")
            if value == "@scratch":
                value = tempfile.mkdtemp(prefix="scratch-", dir=work)
            env[name] = value.replace(PLACEHOLDER, gateway.host)
        cmd = command(s, work, env, timeout)
        rc, out, err = run(cmd, work, env, timeout)
        lines = [ANSI.sub("", line).strip() for line in out.splitlines()]
        ok = rc == 0 and s.attrs["expect"] in lines
        detail = ""
        if not ok:
            detail = (f"exit {rc}, expected a line {s.attrs['expect']!r}\n"
                      f"--- stdout (tail)\n{out[-1500:]}\n--- stderr (tail)\n{err[-2500:]}\n"
                      f"--- kvmux log (tail)\n{gateway.log_tail()}")
        return ok, time.monotonic() - started, detail
    except (RuntimeError, OSError) as e:
        return False, time.monotonic() - started, str(e)
    finally:
        if gateway is not None:
            gateway.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="check the markers, run nothing")
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "kvmux"))
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()

    snippets, problems = collect()
    for p in problems:
        print(f"FAIL  {p}")
    if args.names:
        unknown = set(args.names) - {s.name for s in snippets}
        if unknown:
            print(f"FAIL  no snippet named {', '.join(sorted(unknown))}")
            return 1
        snippets = [s for s in snippets if s.name in args.names]
    if args.list:
        for s in snippets:
            print(f"{s.name:28} {s.lang:7} {s.where}")
        print(f"{len(snippets)} snippets, {len(problems)} problems")
        return 1 if problems else 0
    if not os.access(args.bin, os.X_OK):
        print(f"FAIL  no kvmux binary at {args.bin} (cargo build --release -p kvmux)")
        return 1

    results = collections.defaultdict(lambda: [0, 0])
    failed = len(problems)
    passed = 0
    scratch = tempfile.mkdtemp(prefix="kvmux-snippets-")
    try:
        for s in snippets:
            ok, secs, detail = run_one(s, os.path.abspath(args.bin), scratch)
            results[s.lang][0 if ok else 1] += 1
            passed += ok
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'}  {s.name:28} {s.lang:7} {s.where:24} {secs:6.1f}s",
                  flush=True)
            if detail:
                print("      " + detail.replace("\n", "\n      "), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("per language: " + ", ".join(f"{lang} {p}/{p + f}" for lang, (p, f) in sorted(results.items())))
    print(f"docs: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
