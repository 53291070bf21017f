"""Shared pytest fixtures for the real-SDK suites: start the real kvmux binary on a free
127.0.0.1 port with a fresh data dir, wait for health, stop it by PID afterwards.

KVMUX_BIN names the binary (the test script sets it); otherwise target/debug/kvmux is used.
KVMUX_TEST_STORAGE=postgres://... runs every gateway on PostgreSQL instead of redb.
"""

import hashlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

DEV_SECRET = "kvmuxdevsecret"
DEV_IDS = {"tencent": "AKIDkvmuxdev", "aliyun": "LTAIkvmuxdev", "huawei": "HWkvmuxdev"}


def kvmux_bin() -> str:
    return os.environ.get("KVMUX_BIN") or str(ROOT / "target" / "debug" / "kvmux")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_credentials_toml() -> str:
    out = []
    for dialect, key_id in DEV_IDS.items():
        out.append(
            f'[[credentials]]\ndialect = "{dialect}"\nid = "{key_id}"\n'
            f'secret = "{DEV_SECRET}"\naccount = "dev"\n'
        )
    return "\n".join(out)


def storage_toml(data_dir: str) -> str:
    """With KVMUX_TEST_STORAGE=postgres://..., a `storage` line whose PostgreSQL schema belongs to
    `data_dir`: a fresh data dir gets a fresh schema, and a gateway restarted on the same data dir
    finds its data again, exactly as with the embedded store."""
    url = os.environ.get("KVMUX_TEST_STORAGE")
    if not url:
        return ""
    schema = "gw_" + hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:20]
    sep = "&" if "?" in url else "?"
    return f'storage = "{url}{sep}options=-csearch_path%3D{schema}"\n'


class Kvmux:
    """One kvmux process. `extra_toml` is appended to a config that sets listen, data_dir,
    all three dialects and the dev credentials; pass `credentials_toml` to replace the latter."""

    def __init__(self, extra_toml: str = "", credentials_toml: str | None = None, data_dir: str | None = None):
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="kvmux-test-")
        self.data_dir = data_dir or os.path.join(self._tmp.name, "data")
        self.config_path = os.path.join(self._tmp.name, "kvmux.toml")
        creds = dev_credentials_toml() if credentials_toml is None else credentials_toml
        with open(self.config_path, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port}"\n'
                f'data_dir = "{self.data_dir}"\n'
                f"{storage_toml(self.data_dir)}"
                f"{extra_toml}\n\n{creds}\n"
            )
        self.log_path = os.path.join(self._tmp.name, "kvmux.log")
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Kvmux":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [kvmux_bin(), "serve", "--config", self.config_path],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kvmux exited early: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_kvmux/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kvmux did not become healthy: {self.log()}")

    def stop(self, sig=signal.SIGTERM) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)

    def log(self) -> str:
        try:
            return pathlib.Path(self.log_path).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def admin(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def advance(self, seconds: int) -> int:
        return self.admin("POST", "/_kvmux/clock/advance", {"seconds": seconds})["now"]

    def reset(self):
        return self.admin("POST", "/_kvmux/reset", {})

    def close(self):
        self.stop()
        self._tmp.cleanup()


@pytest.fixture(scope="session")
def kvmux():
    """One shared gateway with the default dev credentials (tests use unique names)."""
    server = Kvmux().start()
    yield server
    server.close()


@pytest.fixture
def make_kvmux():
    """Factory for gateways with their own config; all are stopped after the test."""
    started = []

    def make(**kwargs) -> Kvmux:
        server = Kvmux(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()
