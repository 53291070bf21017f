"""`Server`: one kvmux gateway process for a test suite, and the vendor SDK clients pointed at it.

The gateway is started as `kvmux serve --storage memory --listen 127.0.0.1:0 --ready-file F`
(docs/OPERATOR.md section 10): the kernel picks the port, and the gateway writes
`{"url","host","pid","version"}` to F once it accepts connections, so nothing here picks a port
or polls a health endpoint. Admin calls use the standard library only (urllib).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from typing import Any, Optional, Tuple

__all__ = ["Server", "KvmuxError", "find_binary", "DEV_SECRET", "DEV_IDS"]

#: The public dev credentials of kvmux's built-in config (all reach account "dev").
DEV_SECRET = "kvmuxdevsecret"
DEV_IDS = {"tencent": "AKIDkvmuxdev", "aliyun": "LTAIkvmuxdev", "huawei": "HWkvmuxdev"}

# Names a caller may give a dialect: ESA and DCDN are both the aliyun dialect.
_DIALECTS = {"tencent": "tencent", "aliyun": "aliyun", "esa": "aliyun", "dcdn": "aliyun", "huawei": "huawei"}

# The checkpoint taken right after start-up: `clean()` restores it, which puts back the empty
# state and the engine clock as they were (a reset alone keeps an advanced clock advanced).
_START_CHECKPOINT = "kvmux.start"

# Environment variables that would make the gateway read a config or data dir other than the one
# this Server describes; the child runs without them.
_CONFIG_ENV = ("KVMUX_CONFIG", "KVMUX_DATA_DIR", "KVMUX_LISTEN", "KVMUX_STORAGE")

_HUAWEI_NAME = re.compile(r"^[a-z0-9_-]{3,63}$")


class KvmuxError(RuntimeError):
    """The gateway did not start, or an admin call was refused (`status` and `body` say how)."""

    def __init__(self, message: str, status: Optional[int] = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


def find_binary(binary: Optional[str] = None) -> str:
    """The kvmux executable to run: `binary` if given, else `$KVMUX_BIN`, else the one this wheel
    installed (the scripts directory of the running interpreter), else `kvmux` on PATH."""
    for candidate in (binary, os.environ.get("KVMUX_BIN")):
        if candidate:
            path = shutil.which(candidate) if os.sep not in candidate else candidate
            if not path or not os.access(path, os.X_OK):
                raise KvmuxError(f"kvmux binary {candidate!r} is not an executable file")
            return path
    name = "kvmux.exe" if sys.platform == "win32" else "kvmux"
    scripts = {sysconfig.get_path("scripts"), os.path.dirname(sys.executable)}
    for directory in scripts:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    path = shutil.which("kvmux")
    if path:
        return path
    raise KvmuxError(
        "no kvmux binary: install the kvmux wheel (it puts `kvmux` on PATH), "
        "or pass binary= / set KVMUX_BIN"
    )


def _stop_process(proc: subprocess.Popen, timeout: float = 15) -> Optional[int]:
    """SIGTERM (the gateway drains and exits within 10 s), then SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


def _finalize(proc: subprocess.Popen, tmpdir: str) -> None:
    # Runs at garbage collection or interpreter exit when stop() was never called: no gateway
    # outlives the test process, and no temp dir is left behind.
    try:
        _stop_process(proc, timeout=5)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _missing_sdk(factory: str, package: str, error: ImportError) -> ImportError:
    message = f"Server.{factory}() needs the vendor SDK: pip install {package}  ({error})"
    return ImportError(message, name=getattr(error, "name", None))


class Server:
    """A kvmux gateway in a child process, on a free 127.0.0.1 port.

    `config`: a path to a kvmux TOML config, or TOML text (a str with a newline); default none,
    which is kvmux's built-in defaults: all three dialects and the dev credentials.
    `binary`: the kvmux executable (default: `$KVMUX_BIN`, else the one in this wheel, else PATH).
    `storage`: "memory" (default; nothing on disk), "redb" (a fresh data dir in a temp dir),
    a postgres:// URL, or None for what the config says.
    `admin_token`: sent as the Bearer token of admin calls when the config sets one (default:
    $KVMUX_ADMIN_TOKEN, which the gateway reads too).

    Starts on construction; use it as a context manager (`with Server() as server:`) or call
    `stop()`. `url`, `host` ("127.0.0.1:PORT", what the SDKs' endpoint settings take) and `pid`
    come from the gateway's ready file.
    """

    def __init__(
        self,
        config: Optional[str] = None,
        binary: Optional[str] = None,
        storage: Optional[str] = "memory",
        *,
        admin_token: Optional[str] = None,
        start_timeout: float = 30,
    ):
        self.binary = find_binary(binary)
        # The gateway reads KVMUX_ADMIN_TOKEN from the environment it inherits: so do its admin calls.
        self.admin_token = admin_token or os.environ.get("KVMUX_ADMIN_TOKEN")
        self._tmpdir = tempfile.mkdtemp(prefix="kvmux-")
        self._added_credentials: list = []
        self._start_checkpoint = False
        self.url = self.host = None
        self.pid = None
        self.version = None
        self.proc = None
        try:
            self._start(config, storage, start_timeout)
        except BaseException:
            if self.proc is not None:
                _stop_process(self.proc, timeout=5)
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self._finalizer = weakref.finalize(self, _finalize, self.proc, self._tmpdir)

    # --- life cycle -------------------------------------------------------------------------

    def _start(self, config, storage, timeout):
        command = [self.binary, "serve", "--listen", "127.0.0.1:0"]
        if config is not None:
            path = os.fspath(config)
            if isinstance(config, str) and "\n" in config:
                path = os.path.join(self._tmpdir, "kvmux.toml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(config)
            command += ["--config", os.path.abspath(path)]
        if storage == "redb":
            command += ["--data-dir", os.path.join(self._tmpdir, "data")]
        elif storage is not None:
            command += ["--storage", storage]
        ready = os.path.join(self._tmpdir, "ready.json")
        command += ["--ready-file", ready]
        self.log_path = os.path.join(self._tmpdir, "kvmux.log")
        env = {k: v for k, v in os.environ.items() if k not in _CONFIG_ENV}
        with open(self.log_path, "ab") as log:
            # cwd is the temp dir: a config/kvmux.toml in the caller's directory is not read.
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self._tmpdir, env=env,
            )
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise KvmuxError(f"kvmux exited with {self.proc.returncode} before it was ready:\n{self.log()}")
            if time.monotonic() > deadline:
                raise KvmuxError(f"kvmux wrote no ready file within {timeout} s:\n{self.log()}")
            time.sleep(0.002)
        with open(ready, encoding="utf-8") as f:
            info = json.load(f)  # written by rename: whole or absent
        if info.get("pid") != self.proc.pid:
            raise KvmuxError(f"ready file names pid {info.get('pid')}, not our child {self.proc.pid}")
        self.url, self.host, self.pid, self.version = info["url"], info["host"], info["pid"], info.get("version")
        try:
            self._admin("PUT", f"/_kvmux/checkpoints/{_START_CHECKPOINT}")
            self._start_checkpoint = True
        except KvmuxError as e:
            # PostgreSQL has no checkpoints (501), a config may turn admin off (404): clean()
            # then resets instead (and says why when admin is off).
            if e.status not in (404, 501):
                raise

    def stop(self) -> Optional[int]:
        """Stops the gateway (SIGTERM, SIGKILL after 15 s) and removes its temp dir; returns its
        exit status. Calling it again does nothing."""
        if self.proc is None:
            return None
        code = _stop_process(self.proc)
        self._finalizer()
        return code

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"<kvmux.Server {self.url} pid={self.pid} {state}>"

    def log(self) -> str:
        """The last 4000 characters the gateway wrote (its log)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # --- admin API ------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """One admin API call (README "Admin API"); returns the decoded JSON reply (None if
        empty). Raises KvmuxError with the status and reply on a 4xx/5xx."""
        return self._admin(method, path, body)

    def _admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"}
        if self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        # Over TLS the gateway is our own child on 127.0.0.1 with a certificate made at start-up.
        context = ssl._create_unverified_context() if self.url.startswith("https:") else None
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                detail = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            raise KvmuxError(f"{method} {path}: {e.code} {detail}", status=e.code, body=detail) from None
        return json.loads(raw) if raw else None

    def health(self) -> dict:
        return self._admin("GET", "/_kvmux/health")

    def credentials(self, dialect: str) -> Tuple[str, str]:
        """(key id, secret) for `dialect` ("tencent", "aliyun" (or "esa"/"dcdn"), "huawei"): the
        dev credentials of the built-in config, account "dev"."""
        return DEV_IDS[_dialect(dialect)], DEV_SECRET

    def add_credentials(self, dialect: str, id: str, secret: str, account: str) -> dict:
        """Adds a key pair reaching `account` while running; `clean()` removes it again."""
        dialect = _dialect(dialect)
        reply = self._admin("POST", "/_kvmux/credentials",
                            {"dialect": dialect, "id": id, "secret": secret, "account": account})
        self._added_credentials.append((dialect, id))
        return reply

    def reset(self, **scope: str) -> dict:
        """Drops all data, or with `account=`, `dialect=`, `container=` only that scope."""
        return self._admin("POST", "/_kvmux/reset", scope)

    def checkpoint(self, name: str) -> dict:
        """Saves the whole state (items, TTLs, containers, quotas, the engine clock) as `name`."""
        return self._admin("PUT", f"/_kvmux/checkpoints/{urllib.parse.quote(name, safe='')}")

    def restore(self, name: str) -> dict:
        """Puts checkpoint `name` back exactly, the engine clock included."""
        return self._admin("POST", f"/_kvmux/checkpoints/{urllib.parse.quote(name, safe='')}/restore")

    def advance_clock(self, seconds: int) -> int:
        """Moves the engine clock (TTLs, expiry) forward; returns the new engine time."""
        return self._admin("POST", "/_kvmux/clock/advance", {"seconds": seconds})["now"]

    def clean(self) -> None:
        """Back to the state just after start-up: the start checkpoint restored (no data, the
        clock as it was; a plain reset on PostgreSQL), every other checkpoint, fault rule and
        recorded request dropped, and the credentials added by add_credentials() removed. The
        pytest fixture `kvmux` calls it before each test."""
        if self._start_checkpoint:
            self._admin("POST", f"/_kvmux/checkpoints/{_START_CHECKPOINT}/restore")
            for cp in self._admin("GET", "/_kvmux/checkpoints")["checkpoints"]:
                if cp["name"] != _START_CHECKPOINT:
                    self._admin("DELETE", f"/_kvmux/checkpoints/{urllib.parse.quote(cp['name'], safe='')}")
        else:
            self._admin("POST", "/_kvmux/reset", {})
        self._admin("DELETE", "/_kvmux/faults")
        self._admin("DELETE", "/_kvmux/requests")
        while self._added_credentials:
            dialect, key_id = self._added_credentials.pop()
            try:
                self._admin("DELETE", f"/_kvmux/credentials/{dialect}/{urllib.parse.quote(key_id, safe='')}")
            except KvmuxError as e:
                if e.status != 404:  # already removed by the test itself
                    raise

    # --- vendor SDK clients -----------------------------------------------------------------

    def _scheme(self) -> str:
        return self.url.split(":", 1)[0]

    def tencent_client(self, credentials: Optional[Tuple[str, str]] = None, region: str = ""):
        """A `tencentcloud.teo.v20220901.teo_client.TeoClient` pointed at this gateway
        (pip install tencentcloud-sdk-python-teo)."""
        try:
            from tencentcloud.common import credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            from tencentcloud.teo.v20220901 import teo_client
        except ImportError as e:
            raise _missing_sdk("tencent_client", "tencentcloud-sdk-python-teo", e) from e
        key_id, secret = credentials or self.credentials("tencent")
        # The protocol must be given to the constructor: setting it afterwards has no effect.
        profile = ClientProfile(httpProfile=HttpProfile(protocol=self._scheme(), endpoint=self.host))
        return teo_client.TeoClient(credential.Credential(key_id, secret), region, profile)

    def _aliyun_config(self, credentials, kwargs):
        from alibabacloud_tea_openapi.models import Config

        key_id, secret = credentials or self.credentials("aliyun")
        return Config(access_key_id=key_id, access_key_secret=secret, endpoint=self.host,
                      protocol=self._scheme(), **kwargs)

    def esa_client(self, credentials: Optional[Tuple[str, str]] = None, **config):
        """An `alibabacloud_esa20240910.client.Client` pointed at this gateway; extra keyword
        arguments go to its `Config` (e.g. signature_algorithm="v2")
        (pip install alibabacloud-esa20240910)."""
        try:
            from alibabacloud_esa20240910.client import Client
        except ImportError as e:
            raise _missing_sdk("esa_client", "alibabacloud-esa20240910", e) from e
        return Client(self._aliyun_config(credentials, config))

    def dcdn_client(self, credentials: Optional[Tuple[str, str]] = None, **config):
        """An `alibabacloud_dcdn20180115.client.Client` pointed at this gateway
        (pip install alibabacloud-dcdn20180115)."""
        try:
            from alibabacloud_dcdn20180115.client import Client
        except ImportError as e:
            raise _missing_sdk("dcdn_client", "alibabacloud-dcdn20180115", e) from e
        return Client(self._aliyun_config(credentials, config))

    def huawei_client(self, store: Optional[str] = None, credentials: Optional[Tuple[str, str]] = None,
                      project_id: str = "kvmuxproject", http_config=None):
        """A `huaweicloudsdkkvs.v1.KvsClient` pointed at this gateway (pip install
        huaweicloudsdkkvs).

        The SDK sends each request to `<store>.<endpoint host>`, a name that does not resolve.
        This client's HttpConfig names the gateway as its HTTP proxy, so every connection goes
        to the gateway, which reads the store from the absolute-form request's Host; the
        process's environment (HTTP_PROXY, NO_PROXY) is neither read for this nor changed.
        `store`, when given, is checked against the KVS naming rule (3 to 63 of [a-z0-9_-]) so
        that a bad name fails here; the client reaches every store. Plain HTTP gateways only.
        The SDK itself writes ~/.huaweicloud/application_id on first use."""
        try:
            from huaweicloudsdkcore.auth.credentials import BasicCredentials
            from huaweicloudsdkcore.http.http_config import HttpConfig
            from huaweicloudsdkkvs.v1 import KvsClient
        except ImportError as e:
            raise _missing_sdk("huawei_client", "huaweicloudsdkkvs", e) from e
        if store is not None and not _HUAWEI_NAME.match(store):
            raise ValueError(f"Huawei KVS store names are 3 to 63 characters of [a-z0-9_-]: {store!r}")
        if self._scheme() != "http":
            raise KvmuxError("huawei_client() routes through the gateway as an HTTP proxy: plain HTTP only")
        gateway = self.url

        class ThroughKvmux(HttpConfig):
            # The SDK's own proxy setting only fills the "https" key; its HttpClient passes this
            # dict as the per-request `proxies` of requests, which wins over the environment.
            def get_proxy(self):
                return {"http": gateway}

        config = ThroughKvmux()
        if http_config is not None:
            config.__dict__.update(http_config.__dict__)
        key_id, secret = credentials or self.credentials("huawei")
        return (
            KvsClient.new_builder()
            .with_credentials(BasicCredentials(key_id, secret, project_id))
            .with_endpoint(self.url)
            .with_http_config(config)
            .build()
        )


def _dialect(name: str) -> str:
    try:
        return _DIALECTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: one of tencent, aliyun (esa, dcdn), huawei") from None
