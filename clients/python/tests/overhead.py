"""Measures what the kvmux pytest fixtures cost per test, with the installed kvmux wheel.

Runs N trivial tests (`assert True`) twice in one pytest session: once taking `kvmux` (the
session's gateway cleaned before each test: checkpoint restore, checkpoint list, fault rules and
recorded requests dropped) and once taking `kvmux_server` (the same gateway, no reset). Prints the
median and 90th percentile of each test's setup+call+teardown time, and the gateway's start-up
(the first test's setup). Usage: python overhead.py [N]   (default 50)
"""

import os
import statistics
import sys
import tempfile
import textwrap
import time

import pytest


class Timings:
    def __init__(self):
        self.by_test = {}

    def pytest_runtest_logreport(self, report):
        self.by_test[report.nodeid] = self.by_test.get(report.nodeid, 0.0) + report.duration
        if report.when == "setup":
            self.by_test.setdefault(report.nodeid + "#setup", report.duration)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "test_overhead.py"), "w") as f:
            f.write(textwrap.dedent(f"""\
                import pytest

                @pytest.mark.parametrize("i", range({n + 1}))
                def test_a_without_reset(kvmux_server, i):
                    assert kvmux_server.pid

                @pytest.mark.parametrize("i", range({n}))
                def test_b_with_reset(kvmux, i):
                    assert kvmux.pid
                """))
        timings = Timings()
        started = time.monotonic()
        code = pytest.main(["-q", "-p", "no:cacheprovider", "--color=no", tmp], plugins=[timings])
        wall = time.monotonic() - started
        if code != 0:
            sys.exit(code)
    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    tests = {k: v for k, v in timings.by_test.items() if not k.endswith("#setup")}
    first = next(k for k in tests if "without_reset[0]" in k)
    startup = timings.by_test[first + "#setup"]
    without = [v for k, v in tests.items() if "without_reset" in k and k != first]
    with_reset = [v for k, v in tests.items() if "with_reset" in k]

    def line(label, values):
        q = statistics.quantiles(values, n=10)
        return f"{label}: median {ms(statistics.median(values))}, p90 {ms(q[-1])} over {len(values)} tests"

    print(line("per test, kvmux_server (no reset)", without))
    print(line("per test, kvmux (clean before each test)", with_reset))
    print(f"gateway start (first test's setup): {ms(startup)}; whole run {wall:.2f} s")


if __name__ == "__main__":
    main()
