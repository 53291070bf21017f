#!/usr/bin/env python3
"""Times the per-test isolation admin calls on a memory-store or redb gateway (docs/BENCHMARKS.md):
checkpoint restore of 10,000 items and a scoped reset of one namespace of 10,000 items (with
another namespace of 10,000 items beside it), each measured end to end over HTTP.

    cargo build --release -p kvmux
    python3 bench/isolation.py [--binary target/release/kvmux] [--items 10000] [--runs 30] \
        [--storage memory|redb]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None):
    data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def tencent(base, action, params):
    return call(base, "POST", "/", params, {
        "X-TC-Action": action,
        "X-TC-Version": "2022-09-01",
        "Authorization": "TC3-HMAC-SHA256 Credential=AKIDkvmuxdev/2026-01-01/teo/tc3_request, "
                         "SignedHeaders=content-type;host, Signature=00",
    })["Response"]


def timed(f):
    start = time.perf_counter()
    result = f()
    return (time.perf_counter() - start) * 1000, result


def summary(name, samples):
    samples = sorted(samples)
    print(f"{name}: min {samples[0]:.1f} ms, median {statistics.median(samples):.1f} ms, "
          f"max {samples[-1]:.1f} ms ({len(samples)} runs)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/kvmux")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--storage", choices=["memory", "redb"], default="memory")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    port = free_port()
    config = os.path.join(tmp, "kvmux.toml")
    with open(config, "w") as f:
        storage = ('storage = "memory"\n' if args.storage == "memory"
                   else f'data_dir = "{os.path.join(tmp, "data")}"\n')
        f.write(f'listen = "127.0.0.1:{port}"\n{storage}[auth]\nmode = "off"\n')
    proc = subprocess.Popen([args.binary, "serve", "--config", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                call(base, "GET", "/_kvmux/health")
                break
            except OSError:
                time.sleep(0.05)
        for ns in ("target", "other"):
            assert "Error" not in tencent(base, "CreateEdgeKVNamespace", {"ZoneId": "z", "Namespace": ns})
        with urllib.request.urlopen(base + "/_kvmux/snapshot") as r:
            lines = r.read().decode().splitlines()
        ids = {rec["name"]: rec["id"] for rec in map(json.loads, lines) if rec["type"] == "container"}
        for ns, cid in ids.items():
            for i in range(args.items):
                lines.append(json.dumps({"type": "item", "container": cid, "key": f"key-{i:06}",
                                         "value": "v" * 100}))
        body = ("\n".join(lines) + "\n").encode()
        ms, r = timed(lambda: call(base, "POST", "/_kvmux/snapshot?replace=true", body))
        print(f"import of {2 * args.items} items ({len(body)} bytes): {ms:.1f} ms -> {r['imported']}")
        ms, r = timed(lambda: call(base, "PUT", "/_kvmux/checkpoints/base"))
        print(f"checkpoint of {r['records']} records: {ms:.1f} ms")
        restores, resets = [], []
        for _ in range(args.runs):
            ms, r = timed(lambda: call(base, "POST", "/_kvmux/reset",
                                       {"dialect": "tencent", "container": "target"}))
            assert r["removed"] == {"containers": 1, "items": args.items}, r
            resets.append(ms)
            ms, r = timed(lambda: call(base, "POST", "/_kvmux/checkpoints/base/restore"))
            restores.append(ms)
        got = tencent(base, "EdgeKVGet", {"ZoneId": "z", "Namespace": "target", "Keys": ["key-000001"]})
        assert got["Data"][0]["Value"] == "v" * 100, got
        summary(f"checkpoint restore ({2 * args.items} items)", restores)
        summary(f"scoped reset of one namespace ({args.items} items of {2 * args.items})", resets)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
