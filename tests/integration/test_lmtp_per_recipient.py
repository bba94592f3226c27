"""An LMTP upstream answers per recipient (RFC 2033): when it refuses one recipient
and accepts another, only the refused one stays queued (parked)."""
import pytest

from helpers import make_message, wait_until


@pytest.mark.holdd(new_lmtp=True)
@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_lmtp_refusing_one_recipient_leaves_only_that_one_queued(holdd, stage):
    holdd.sink_new.set_control({stage: {"bob@example.com": "550 5.1.1 no such mailbox"}})
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    msg = make_message(1)
    holdd.send("a@sender.test", ["anna@example.com", "bob@example.com"], msg)
    result = holdd.ctl_json("release", "anna@example.com", "bob@example.com", "--wait")
    assert (result["delivered"], result["parked"], result["remaining"]) == (1, 1, 0)

    got = holdd.sink_new.deliveries()
    assert [(d["rcpt"], d["mail_from"]) for d in got] == [("anna@example.com", "a@sender.test")]
    assert got[0]["data"].endswith(msg)
    assert holdd.queue("anna@example.com") == []
    bob = holdd.queue("bob@example.com")
    assert len(bob) == 1 and bob[0]["parked"] and "550" in bob[0]["last_error"]


@pytest.mark.holdd(new_lmtp=True)
def test_lmtp_temporary_refusal_of_one_recipient_is_retried_for_that_one_only(holdd):
    holdd.sink_new.set_control({"data": {"bob@example.com": "452 4.2.2 mailbox full"}})
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    holdd.send("a@sender.test", ["anna@example.com", "bob@example.com"], make_message(1))
    holdd.ctl_json("release", "anna@example.com", "bob@example.com")
    holdd.sink_new.wait_for(1, rcpt="anna@example.com")
    wait_until(lambda: len(holdd.sink_new.refusals()) >= 2, 30, what="bob retried")
    holdd.sink_new.set_control({})
    holdd.sink_new.wait_for(1, rcpt="bob@example.com")
    # anna got it exactly once: her delivery was not repeated with bob's retries.
    assert len(holdd.sink_new.deliveries("anna@example.com")) == 1
