"""A 5xx from the upstream parks exactly that message (kept and visible; holdd sends
no bounce), the mailbox's later messages go on; `retry` after the upstream is fixed
delivers the parked one."""
from helpers import make_message, wait_until


def test_5xx_parks_that_message_and_retry_delivers_it(holdd):
    holdd.sink_new.set_control({"data_contains": {"X-Test-Reject: yes": "554 5.6.0 content refused"}})
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(3):
        extra = ["X-Test-Reject: yes"] if n == 1 else []
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], make_message(n, extra_headers=extra))
    result = holdd.ctl_json("release", "anna@example.com", "--wait")
    assert (result["delivered"], result["parked"], result["remaining"]) == (2, 1, 0)

    assert [d["mail_from"] for d in holdd.sink_new.deliveries()] == ["s0@sender.test", "s2@sender.test"]
    queue = holdd.queue("anna@example.com")
    assert [(m["sender"], m["parked"]) for m in queue] == [("s1@sender.test", True)]
    assert "554" in queue[0]["last_error"], queue[0]
    status = holdd.status()
    assert status["parked"] == 1
    show = holdd.ctl_json("show", "anna@example.com")
    assert show["parked"] == 1 and "554" in show["last_error"]["error"]
    check = holdd.ctl("check")
    assert check.returncode in (1, 2), check.stdout  # parked mail is not OK
    # No bounce: nothing went to the sender's side (the old server) either.
    assert not holdd.sink_old.entries()

    holdd.sink_new.set_control({})
    assert holdd.ctl_json("retry", "anna@example.com")["requeued"] == 1
    wait_until(lambda: len(holdd.sink_new.deliveries()) == 3, 30, what="the parked message")
    assert holdd.sink_new.deliveries()[-1]["mail_from"] == "s1@sender.test"
    wait_until(lambda: holdd.queue("anna@example.com") == [], 10, what="empty queue")
    assert holdd.status()["parked"] == 0


def test_retry_all_requeues_parked_messages_of_every_mailbox(holdd):
    holdd.sink_old.set_control({"rcpt": {"bob@example.com": "550 5.1.1 unknown here",
                                         "carol@example.com": "550 5.1.1 unknown here"}})
    holdd.send("a@sender.test", ["bob@example.com", "carol@example.com"], make_message(1))
    wait_until(lambda: holdd.status()["parked"] == 2, 30, what="two parked messages")
    holdd.sink_old.set_control({})
    assert holdd.ctl_json("retry", "--all")["requeued"] == 2
    got = holdd.sink_old.wait_for(2)
    assert sorted(d["rcpt"] for d in got) == ["bob@example.com", "carol@example.com"]
