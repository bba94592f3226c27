"""An alias delivers to every one of its target mailboxes (team@ -> anna@, bob@)."""
from helpers import make_message


def test_alias_queues_one_copy_for_each_target_mailbox(holdd):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    msg = make_message(1, to="team@example.com")
    holdd.send("boss@sender.test", ["team@example.com"], msg)
    for mailbox in ("anna@example.com", "bob@example.com"):
        queued = holdd.queue(mailbox)
        assert [(m["sender"], m["size"]) for m in queued] == [("boss@sender.test", len(msg))]
    assert holdd.queue("carol@example.com") == []


def test_alias_and_its_target_in_one_transaction_give_one_copy(holdd):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    holdd.send("boss@sender.test", ["team@example.com", "anna@example.com"], make_message(2))
    assert len(holdd.queue("anna@example.com")) == 1
    assert len(holdd.queue("bob@example.com")) == 1


def test_holdctl_resolves_alias_like_rcpt(holdd):
    # A MAILBOX argument is resolved like RCPT TO: locking the alias locks its targets.
    r = holdd.ctl("lock", "team@example.com")
    assert r.returncode == 0, r.stderr
    assert holdd.ctl_json("show", "anna@example.com")["state"] == "held"
    assert holdd.ctl_json("show", "bob@example.com")["state"] == "held"
