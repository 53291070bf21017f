"""Extra gateway memory for one 25 MB high-capacity put, driven by the real Alibaba ESA SDK
(`PutKvWithHighCapacityAdvance` through HTTP_PROXY, as a user would run it).

Starts its own kvmux (KVMUX_BIN, default target/release/kvmux) on a free port with a fresh data
dir, reads the gateway's RSS before, its peak RSS (VmHWM) once the put has been answered (the
figure the target is about) and again after reading the value back with GetKv (whose 25 MB JSON
reply costs memory of its own), prints one JSON line, and stops the gateway by its PID. Run with the venv that scripts/test.sh creates:
    .venv/bin/python bench/hc_rss.py
"""

import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from alibabacloud_esa20240910 import models as esa_models
from alibabacloud_esa20240910.client import Client as EsaClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models

ROOT = pathlib.Path(__file__).resolve().parents[1]
VALUE_BYTES = 25 * 1000 * 1000


def status_kib(pid: int, field: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def main() -> int:
    binary = os.environ.get("KVMUX_BIN") or str(ROOT / "target" / "release" / "kvmux")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="kvmux-hc-")
    conf = pathlib.Path(tmp, "kvmux.toml")
    conf.write_text(f'listen = "127.0.0.1:{port}"\ndata_dir = "{tmp}/data"\n')
    proc = subprocess.Popen([binary, "serve", "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_kvmux/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        cfg = open_api_models.Config(access_key_id="LTAIkvmuxdev", access_key_secret="kvmuxdevsecret",
                                     endpoint=f"127.0.0.1:{port}", protocol="http")
        client = EsaClient(cfg)
        client.create_kv_namespace(esa_models.CreateKvNamespaceRequest(namespace="hcrss"))
        value = "v" * VALUE_BYTES
        body = json.dumps({"Namespace": "hcrss", "Key": "big", "Value": value}).encode()
        time.sleep(0.5)
        before = status_kib(proc.pid, "VmRSS")
        os.environ["HTTP_PROXY"] = f"http://127.0.0.1:{port}"
        for var in ("NO_PROXY", "no_proxy", "http_proxy"):
            os.environ.pop(var, None)
        started = time.monotonic()
        client.put_kv_with_high_capacity_advance(
            esa_models.PutKvWithHighCapacityAdvanceRequest(namespace="hcrss", key="big", url_object=io.BytesIO(body)),
            util_models.RuntimeOptions(read_timeout=300000, connect_timeout=10000),
        )
        seconds = time.monotonic() - started
        peak_put = status_kib(proc.pid, "VmHWM")
        os.environ.pop("HTTP_PROXY")
        got = client.get_kv_with_options(esa_models.GetKvRequest(namespace="hcrss", key="big"),
                                         util_models.RuntimeOptions(read_timeout=300000))
        assert len(got.body.value) == VALUE_BYTES, "the value did not round-trip"
        peak_get = status_kib(proc.pid, "VmHWM")
        extra = (peak_put - before) * 1024
        extra_get = (peak_get - before) * 1024
        print(json.dumps({"value_bytes": VALUE_BYTES, "rss_before_kib": before,
                          "peak_rss_after_put_kib": peak_put, "extra_bytes": extra,
                          "extra_over_value": round(extra / VALUE_BYTES, 2),
                          "peak_rss_after_get_kib": peak_get,
                          "extra_over_value_with_get": round(extra_get / VALUE_BYTES, 2),
                          "put_seconds": round(seconds, 2)}))
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
