"""`release --dry-run` shows what would be replayed and changes nothing; `drop`
deletes queued messages only with --yes."""
from helpers import make_message, stays


def test_release_dry_run_changes_nothing(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    sizes = []
    for n in range(3):
        msg = make_message(n)
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], msg)
        sizes.append(len(msg))
    plan = holdd.ctl_json("release", "anna@example.com", "--dry-run")
    assert plan["dry_run"] is True
    assert plan["target"] == f"127.0.0.1:{holdd.sink_new.port}"
    assert plan["messages"] == 3 and plan["bytes"] >= sum(sizes)
    (mb,) = plan["mailboxes"]
    assert mb["mailbox"] == "anna@example.com" and mb["messages"] == 3
    assert mb["first_arrival"] and mb["last_arrival"]
    assert holdd.ctl_json("show", "anna@example.com")["state"] == "held"
    assert stays(lambda: not holdd.sink_new.entries(), 2.0)
    assert len(holdd.queue("anna@example.com")) == 3


def test_drop_needs_yes(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(2):
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], make_message(n))
    first = holdd.queue("anna@example.com")[0]
    preview = holdd.ctl_json("drop", first["id"])
    assert preview["dropped"] is False
    assert [m["id"] for m in preview["messages"]] == [first["id"]]
    assert len(holdd.queue("anna@example.com")) == 2
    done = holdd.ctl_json("drop", first["id"], "--yes")
    assert done["dropped"] is True
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["s1@sender.test"]
