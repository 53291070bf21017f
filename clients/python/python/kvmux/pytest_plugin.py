"""The kvmux pytest plugin, registered through the `pytest11` entry point of the kvmux wheel.

Fixtures:
- `kvmux_server`: one `kvmux.Server` for the whole session (memory store, free port);
- `kvmux`: that same server, put back into its start-up state before each test
  (`Server.clean()`: no data, the engine clock as it was, no checkpoints, fault rules or added
  credentials left by an earlier test).

`--kvmux-binary PATH` (or `KVMUX_BIN`) runs another kvmux binary than the wheel's.
"""

import pytest

from ._server import Server


def pytest_addoption(parser):
    group = parser.getgroup("kvmux", "kvmux gateway")
    group.addoption(
        "--kvmux-binary",
        default=None,
        help="kvmux binary for the kvmux fixtures (default: $KVMUX_BIN, else the one installed "
        "with the kvmux package, else kvmux on PATH)",
    )


@pytest.fixture(scope="session")
def kvmux_server(request):
    """One kvmux gateway for the test session (memory store, 127.0.0.1, a free port)."""
    server = Server(binary=request.config.getoption("kvmux_binary"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kvmux(kvmux_server):
    """The session's gateway, back in its start-up state before this test."""
    kvmux_server.clean()
    return kvmux_server
