"""Shared pytest fixtures for the real-SDK suites: start the real kvmux binary on a free
127.0.0.1 port with a fresh data dir, wait for health, stop it by PID afterwards.

KVMUX_BIN names the binary (the test script sets it); otherwise target/debug/kvmux is used.
KVMUX_TEST_STORAGE=postgres://... runs every gateway on PostgreSQL instead of redb.
KVMUX_TEST_STORAGE=memory runs every gateway as a test harness would: `kvmux serve --storage memory
--listen 127.0.0.1:0 --ready-file F`, its URL read from F (no port picked here, no health polling);
tests that restart a gateway on the same data are skipped, saying so.
KVMUX_TEST_TLS=1 runs every gateway with `[tls] self_signed = true`: each writes its certificate,
which is appended to one session bundle (CA_BUNDLE) that the clients trust, each SDK its own way,
and nothing else; `url` and `SCHEME` are then https.
"""

import hashlib
import atexit
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

DEV_SECRET = "kvmuxdevsecret"
DEV_IDS = {"tencent": "AKIDkvmuxdev", "aliyun": "LTAIkvmuxdev", "huawei": "HWkvmuxdev"}

TLS = os.environ.get("KVMUX_TEST_TLS") == "1"
MEMORY = os.environ.get("KVMUX_TEST_STORAGE") == "memory"
MEMORY_RESTART_SKIP = (
    "needs a restart on the same data, and the memory store (KVMUX_TEST_STORAGE=memory) "
    "keeps nothing once its gateway stops"
)
SCHEME = "https" if TLS else "http"
# Under TLS: the certificates of every gateway this session started, and no other. Python's
# default SSL context (urllib, aiohttp) finds it through SSL_CERT_FILE, requests through
# REQUESTS_CA_BUNDLE; the SDKs that take a CA file are given it explicitly.
CA_BUNDLE = None
if TLS:
    _bundle_dir = tempfile.mkdtemp(prefix="kvmux-tls-trust-")
    # The bundle is only this session's: removed when pytest exits, pass or fail (it used to be
    # left in /tmp, one directory per TLS run).
    atexit.register(shutil.rmtree, _bundle_dir, ignore_errors=True)
    CA_BUNDLE = os.path.join(_bundle_dir, "gateways.pem")
    pathlib.Path(CA_BUNDLE).write_text("")
    os.environ["SSL_CERT_FILE"] = CA_BUNDLE
    os.environ["REQUESTS_CA_BUNDLE"] = CA_BUNDLE


# Under TLS the Huawei SDK is pointed at https://kvs.localhost:PORT: it puts the store name in front
# of that host (`<store>.kvs.localhost`), which the gateway's self-signed certificate covers with
# `*.kvs.localhost` and kv-huawei reads as a store through `base_hosts`. (A wildcard directly over
# `localhost` or `127.0.0.1` is refused by OpenSSL, hence the extra label.)
HUAWEI_TLS_HOST = "kvs.localhost"


def tls_only_skip(reason: str):
    """Skips a test only when the suite runs over TLS, saying why it cannot."""
    return pytest.mark.skipif(TLS, reason=f"not over TLS: {reason}")


def burst(call, total: int, threads: int = 16) -> list:
    """Runs call(i) for i in range(total) from `threads` threads at once and returns each outcome
    (its result, or the exception it raised), so a rate limit is exceeded however slow each call
    is on a loaded machine: one thread's calls in a row can take longer than the limit's window."""
    from concurrent.futures import ThreadPoolExecutor

    def outcome(i):
        try:
            return call(i)
        except Exception as e:  # noqa: BLE001 - the SDKs raise their own hierarchies
            return e

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(outcome, range(total)))


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
    if not url or MEMORY:
        return ""  # redb, or memory (chosen by --storage on the command line)
    schema = "gw_" + hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:20]
    sep = "&" if "?" in url else "?"
    return f'storage = "{url}{sep}options=-csearch_path%3D{schema}"\n'


class Kvmux:
    """One kvmux process. `extra_toml` is appended to a config that sets listen, data_dir,
    all three dialects and the dev credentials; pass `credentials_toml` to replace the latter."""

    def __init__(self, extra_toml: str = "", credentials_toml: str | None = None, data_dir: str | None = None):
        if MEMORY and data_dir is not None:
            # A caller naming its data dir means to start a second gateway on the same data.
            pytest.skip(MEMORY_RESTART_SKIP)
        # On memory the gateway picks its port (listen 127.0.0.1:0) and start() reads it.
        self.port = None if MEMORY else free_port()
        self._started = False
        self._tmp = tempfile.TemporaryDirectory(prefix="kvmux-test-")
        self.data_dir = data_dir or os.path.join(self._tmp.name, "data")
        self.config_path = os.path.join(self._tmp.name, "kvmux.toml")
        creds = dev_credentials_toml() if credentials_toml is None else credentials_toml
        self.cert_path = os.path.join(self._tmp.name, "cert.pem") if TLS else None
        tls = ""
        if TLS:
            tls = (
                f'[tls]\nself_signed = true\nwrite_cert = "{self.cert_path}"\n'
                f'names = ["{HUAWEI_TLS_HOST}", "*.{HUAWEI_TLS_HOST}"]\n'
            )
            base_hosts = f'base_hosts = ["{HUAWEI_TLS_HOST}"]\n'
            if "[huawei]\n" in extra_toml:
                extra_toml = extra_toml.replace("[huawei]\n", "[huawei]\n" + base_hosts, 1)
            else:
                tls += "[huawei]\n" + base_hosts
        with open(self.config_path, "w") as f:
            f.write(
                f'listen = "127.0.0.1:{self.port or 0}"\n'
                f'data_dir = "{self.data_dir}"\n'
                f"{storage_toml(self.data_dir)}"
                f"{extra_toml}\n\n{creds}\n{tls}"
            )
        self.log_path = os.path.join(self._tmp.name, "kvmux.log")
        self.ready_path = os.path.join(self._tmp.name, "ready.json")
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{SCHEME}://127.0.0.1:{self.port}"

    def _ssl_context(self):
        """Under TLS, a context trusting only this gateway's certificate (None over plain HTTP)."""
        if not TLS:
            return None
        return ssl.create_default_context(cafile=self.cert_path)

    def _trust_certificate(self):
        """Waits for the certificate the gateway writes at start-up (by rename: whole or absent)
        and adds it to CA_BUNDLE."""
        deadline = time.monotonic() + 30
        while not os.path.exists(self.cert_path) or os.path.getsize(self.cert_path) == 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kvmux wrote no certificate: {self.log()}")
            time.sleep(0.05)
        with open(CA_BUNDLE, "a") as bundle:
            bundle.write(pathlib.Path(self.cert_path).read_text())

    def start(self) -> "Kvmux":
        if MEMORY and self._started:
            pytest.skip(MEMORY_RESTART_SKIP)
        self._started = True
        log = open(self.log_path, "ab")
        if TLS and os.path.exists(self.cert_path):
            os.remove(self.cert_path)  # a restart writes a new one; never trust the old one
        command = [kvmux_bin(), "serve", "--config", self.config_path]
        if MEMORY:
            command += ["--storage", "memory", "--listen", "127.0.0.1:0", "--ready-file", self.ready_path]
        self.proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        if MEMORY:
            self._read_ready_file()
        if TLS:
            self._trust_certificate()
        if MEMORY:
            return self  # the ready file is written once the listener accepts: no polling
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kvmux exited early: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_kvmux/health", timeout=1, context=self._ssl_context()) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kvmux did not become healthy: {self.log()}")

    def _read_ready_file(self):
        """Waits for `--ready-file` (written by rename: whole or absent) and takes the port from
        it, checking the documented object on the way."""
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kvmux wrote no ready file: {self.log()}")
            time.sleep(0.005)
        ready = json.loads(pathlib.Path(self.ready_path).read_text())
        assert list(ready) == ["url", "host", "pid", "version"], ready
        assert ready["pid"] == self.proc.pid, ready
        host, port = ready["host"].rsplit(":", 1)
        assert host == "127.0.0.1" and ready["url"] == f"{SCHEME}://{ready['host']}", ready
        self.port = int(port)

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
        with urllib.request.urlopen(req, timeout=10, context=self._ssl_context()) as r:
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
