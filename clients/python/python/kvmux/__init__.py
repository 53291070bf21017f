"""kvmux for test suites: the gateway binary (installed on PATH by this wheel), `Server` to run
it on a free port, the vendor SDK clients pointed at it, and a pytest plugin (fixtures
`kvmux_server` and `kvmux`, option `--kvmux-binary`).

    import kvmux

    with kvmux.Server() as server:
        teo = server.tencent_client()       # tencentcloud-sdk-python-teo's TeoClient
        server.checkpoint("seeded"); server.restore("seeded"); server.advance_clock(60)
"""

from ._server import DEV_IDS, DEV_SECRET, KvmuxError, Server, find_binary

__all__ = ["Server", "KvmuxError", "find_binary", "DEV_IDS", "DEV_SECRET"]
