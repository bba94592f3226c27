"""`holdctl status`, `list`, `show`, `queue` (--json) carry the fields of
docs/control-protocol.md, and the plain (non-JSON) forms print something readable."""
import re

from helpers import make_message

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_status_fields(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    msg = make_message(1)
    holdd.send("a@sender.test", ["anna@example.com"], msg)
    s = holdd.status()
    assert s["mailboxes"] == {"old": 3, "held": 1, "migrated": 0}
    assert s["queued"]["messages"] == 1 and s["queued"]["bytes"] >= len(msg)
    assert s["held"]["messages"] == 1 and s["held"]["bytes"] >= len(msg)
    assert isinstance(s["held"]["oldest_age_seconds"], int)
    for key in ("parked", "deferred", "in_flight", "removal_pending", "uptime_seconds", "disk_free"):
        assert isinstance(s[key], int), key
    assert s["paused"] is False
    assert set(s["delivered"]) == {"old", "new"}
    assert s["last_relay"] == {"old": None, "new": None}
    assert set(s["last_relay_age_seconds"]) == {"old", "new"}
    assert s["accepted"] == {"messages": 1, "bytes": s["accepted"]["bytes"]}
    assert s["accepted"]["bytes"] >= len(msg)


def test_list_and_show_and_queue_fields(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    mailboxes = holdd.ctl_json("list")["mailboxes"]
    assert [m["mailbox"] for m in mailboxes] == sorted(m["mailbox"] for m in mailboxes)
    anna = next(m for m in mailboxes if m["mailbox"] == "anna@example.com")
    assert (anna["state"], anna["queued"], anna["parked"]) == ("held", 1, 0)
    assert anna["bytes"] > 0 and isinstance(anna["oldest_age_seconds"], int)

    show = holdd.ctl_json("show", "anna@example.com")
    for key in ("mailbox", "state", "history", "queued", "bytes", "parked", "oldest_age_seconds",
                "in_flight", "removal_pending", "next_attempt", "last_delivery", "last_error",
                "delivered"):
        assert key in show, key
    assert show["mailbox"] == "anna@example.com" and show["queued"] == 1
    h = show["history"][-1]
    assert (h["from"], h["to"]) == ("old", "held") and RFC3339.match(h["at"]) and h["by"]

    q = holdd.ctl_json("queue", "anna@example.com")
    assert q["mailbox"] == "anna@example.com" and q["state"] == "held"
    m = q["messages"][0]
    for key in ("id", "seq", "arrival", "sender", "recipient", "size", "attempts",
                "next_attempt", "last_error", "parked"):
        assert key in m, key
    assert RFC3339.match(m["arrival"]) and m["attempts"] == 0 and m["parked"] is False


def test_plain_output_is_human_readable(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    for args in (["status"], ["list"], ["show", "anna@example.com"], ["queue", "anna@example.com"]):
        r = holdd.ctl(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.strip() and not r.stdout.lstrip().startswith("{"), (args, r.stdout)
    assert "a@sender.test" in holdd.ctl("queue", "anna@example.com").stdout
