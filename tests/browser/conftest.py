"""Lists the screenshots the dashboard tests took at the end of the run (also under `pytest -q`),
each with its test, so a reader of the output knows where to look."""

_SHOTS = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _SHOTS.extend((report.nodeid, path) for name, path in report.user_properties if name == "screenshot")


def pytest_terminal_summary(terminalreporter):
    if not _SHOTS:
        return
    terminalreporter.section("dashboard screenshots")
    for nodeid, path in _SHOTS:
        terminalreporter.write_line(f"{path}  ({nodeid.split('::')[-1]})")
