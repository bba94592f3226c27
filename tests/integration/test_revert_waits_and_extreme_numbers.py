"""Issue 12, smaller findings: `revert` waits for relays in flight as `lock` does,
and holdctl's numbers far out of range are refused or capped, never undefined
behaviour in the daemon (the ASan+UBSan tree runs this too)."""
import threading
import time

import pytest

from helpers import make_message, wait_until
from raw_upstream import RawUpstream


@pytest.fixture
def slow_new():
    server = RawUpstream()
    server.data_delay = 3.0
    yield server
    server.stop()


@pytest.mark.holdd(start=False)
def test_revert_returns_only_after_the_relay_in_flight_to_the_new_server(holdd, slow_new):
    holdd.config["upstream"]["new"]["port"] = slow_new.port
    holdd.write_config()
    holdd.start()
    holdd.ctl_json("release", "anna@example.com")  # migrated: mail goes to the new server
    holdd.send("s@sender.test", ["anna@example.com"], make_message(1))
    wait_until(lambda: holdd.ctl_json("show", "anna@example.com").get("in_flight")
               or slow_new.attempts >= 1, what="the relay to the new server to start")
    started = time.monotonic()
    r = holdd.ctl("revert", "anna@example.com")
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    # The new server answers 3 s after the end of DATA: revert waited for it, so
    # when it returns the message is at the new server and nothing more goes there.
    assert len(slow_new.delivered()) == 1, f"revert returned after {took:.1f}s with the relay in flight"
    assert took >= 1.0, took
    assert holdd.queue("anna@example.com") == []
    holdd.send("s@sender.test", ["anna@example.com"], make_message(2))
    holdd.sink_old.wait_for(1)
    assert len(slow_new.delivered()) == 1


@pytest.mark.holdd()
def test_numbers_out_of_range_are_refused_or_capped(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("s@sender.test", ["anna@example.com"], make_message(3))
    # Far beyond int64 nanoseconds: capped (ten years), so the wait ends when the
    # backlog is delivered, not never and not at once by an overflow.
    r = holdd.ctl("release", "anna@example.com", "--wait", "--timeout", "106751991167d", "--rate", "1e300")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert len(holdd.sink_new.wait_for(1)) == 1
    for args in (("--warn-age", "106751991167d"), ("--crit-age", "99999999999999d"),
                 ("--old-quiet", "106751991167d")):
        r = holdd.ctl("check", *args)
        assert r.returncode in (0, 1, 2), (args, r.stdout, r.stderr)
        assert r.stdout.startswith("HOLDD "), r.stdout
    r = holdd.ctl("release", "bob@example.com", "--rate", "inf")
    assert r.returncode == 2, (r.stdout, r.stderr)  # a usage error, said by holdctl
    r = holdd.ctl("release", "bob@example.com", "--rate", "1e-300")
    assert r.returncode in (0, 2), (r.stdout, r.stderr)
    assert holdd.running
