"""Fixtures for the holdd integration tests.

`holdd`: the real daemon (env HOLDD_BIN, HOLDCTL_BIN) on a per-test TOML with free
loopback ports, its own spool and control socket, domains ["example.com"], mailboxes
anna@, bob@, carol@, dave@ (all `old` at start), alias team@ -> anna@, bob@, and two
recording upstreams (`holdd.sink_old`, `holdd.sink_new`). Stopped at teardown with
SIGTERM, which must make it exit 0.

Per-test settings with a marker:
    @pytest.mark.holdd(config={"server": {"max_recipients": 2}}, new_lmtp=True)
`config` is deep-merged into the default configuration (None deletes a key).

`postgres`: a real PostgreSQL server of its own (postgres.py) for the [cluster] tests,
started, with an empty database holdd; `postgres.conninfo` is the libpq connection
string. Stopped and removed at teardown. Skipped, loudly, when no server is installed.
"""
import os
from pathlib import Path

import pytest

from helpers import Holdd, Sink
import postgres as postgres_server


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "holdd(config=None, old_lmtp=False, new_lmtp=False, start=True, "
        "sinks_up=True): per-test settings for the holdd fixture")
    # A skip is a test that checked nothing: always list each with its reason in the
    # summary (as -rs does), also under `pytest -q` and ctest.
    chars = config.option.reportchars or ""
    if not any(c in chars for c in "sSaA"):
        config.option.reportchars = chars + "s"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        server = getattr(item, "_postgres", None)
        if server is not None:
            report.sections.append((f"postgres log ({server.log_path})",
                                    server.log_tail(200)))
        daemon = getattr(item, "_holdd", None)
        if daemon is not None:
            text = daemon.log_text()
            if len(text) > 60000:
                text = "...(cut)...\n" + text[-60000:]
            report.sections.append((f"holdd log ({daemon.log_path})", text))
            for sink in (daemon.sink_old, daemon.sink_new):
                if sink.stderr.exists() and sink.stderr.stat().st_size:
                    report.sections.append((f"sink {sink.name} stderr",
                                            sink.stderr.read_text(errors="replace")[-20000:]))


@pytest.fixture
def holdd(request, tmp_path):
    marker = request.node.get_closest_marker("holdd")
    opts = dict(marker.kwargs) if marker else {}
    sink_old = Sink("old", tmp_path, lmtp=opts.get("old_lmtp", False))
    sink_new = Sink("new", tmp_path, lmtp=opts.get("new_lmtp", False))
    daemon = Holdd(tmp_path, sink_old, sink_new, overrides=opts.get("config"))
    request.node._holdd = daemon
    try:
        if opts.get("sinks_up", True):
            sink_old.start()
            sink_new.start()
        if opts.get("start", True):
            daemon.start()
        yield daemon
        # A clean SIGTERM exit (and no sanitizer report) is part of every test.
        daemon.stop()
        reports = daemon.sanitizer_reports()
        assert not reports, "sanitizer reports in holdd's output:\n" + "\n".join(reports)
    finally:
        daemon.cleanup()
        sink_old.stop()
        sink_new.stop()


@pytest.fixture
def source_dir():
    return Path(os.environ.get("HOLDD_SOURCE_DIR", Path(__file__).resolve().parents[2]))


@pytest.fixture
def postgres(request, tmp_path):
    ok, reason = postgres_server.available()
    if not ok:
        pytest.skip("PostgreSQL server not installed: scripts/install-deps.sh installs "
                    f"postgresql; cluster tests SKIPPED ({reason})")
    server = postgres_server.Postgres(tmp_path / "postgres")
    request.node._postgres = server
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
