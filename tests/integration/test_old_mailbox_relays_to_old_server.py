"""A mailbox in state `old` gets its mail on the old server at once; `revert` after
`release` sends later mail back to the old server."""
from helpers import make_message, split_prepended


def test_old_mailbox_mail_goes_to_the_old_server(holdd):
    msg = make_message(1, to="bob@example.com")
    holdd.send("a@sender.test", ["bob@example.com"], msg)
    got = holdd.sink_old.wait_for(1)
    assert (got[0]["mail_from"], got[0]["rcpt"]) == ("a@sender.test", "bob@example.com")
    split_prepended(got[0]["data"], msg)
    assert not holdd.sink_new.entries()
    holdd.wait_queued("bob@example.com", 0)
    status = holdd.status()
    assert status["delivered"]["old"] >= 1
    assert status["last_relay"]["old"] is not None


def test_revert_after_release_sends_later_mail_to_the_old_server(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.ctl_json("release", "anna@example.com", "--wait")
    holdd.send("first@sender.test", ["anna@example.com"], make_message(1))
    holdd.sink_new.wait_for(1)

    result = holdd.ctl_json("revert", "anna@example.com")
    assert result["changed"] == ["anna@example.com"] and result["state"] == "old"
    holdd.send("second@sender.test", ["anna@example.com"], make_message(2))
    got = holdd.sink_old.wait_for(1)
    assert got[0]["mail_from"] == "second@sender.test"
    assert [d["mail_from"] for d in holdd.sink_new.deliveries()] == ["first@sender.test"]
    history = holdd.ctl_json("show", "anna@example.com")["history"]
    assert [(h["from"], h["to"]) for h in history] == [
        ("old", "held"), ("held", "migrated"), ("migrated", "old")]


def test_revert_of_held_mailbox_sends_its_queue_to_the_old_server_in_order(holdd):
    holdd.ctl_json("lock", "carol@example.com")
    for n in range(3):
        holdd.send(f"s{n}@sender.test", ["carol@example.com"], make_message(n, to="carol@example.com"))
    holdd.ctl_json("revert", "carol@example.com")
    got = holdd.sink_old.wait_for(3)
    assert [d["mail_from"] for d in got] == [f"s{n}@sender.test" for n in range(3)]
    assert not holdd.sink_new.entries()
