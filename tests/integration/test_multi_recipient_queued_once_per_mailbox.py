"""One message with several recipients is queued once for each recipient mailbox."""
from helpers import make_message


def test_message_to_three_mailboxes_is_queued_once_in_each(holdd):
    rcpts = ["anna@example.com", "bob@example.com", "carol@example.com"]
    holdd.ctl_json("lock", *rcpts)
    msg = make_message(1, to="anna@example.com")
    holdd.send("multi@sender.test", rcpts, msg)
    for r in rcpts:
        queued = holdd.queue(r)
        assert len(queued) == 1, (r, queued)
        assert queued[0]["sender"] == "multi@sender.test"
        assert queued[0]["size"] == len(msg)
        assert queued[0]["recipient"] == r
    assert holdd.queue("dave@example.com") == []
    status = holdd.status()
    assert status["accepted"]["messages"] == 1
    assert status["held"]["messages"] == 3


def test_same_mailbox_twice_in_one_transaction_is_queued_once(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    # The same mailbox twice (the domain compares case-insensitively): one copy.
    holdd.send("dup@sender.test", ["anna@example.com", "anna@EXAMPLE.com"], make_message(2))
    assert len(holdd.queue("anna@example.com")) == 1
