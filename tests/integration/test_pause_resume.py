"""`pause` stops all relaying (intake goes on, mail stays queued); `resume` restarts it."""
from helpers import make_message, stays


def test_pause_keeps_mail_queued_and_resume_relays_it(holdd):
    assert holdd.ctl_json("pause")["paused"] is True
    assert holdd.status()["paused"] is True
    for n in range(3):
        holdd.send(f"s{n}@sender.test", ["bob@example.com"], make_message(n, to="bob@example.com"))
    holdd.wait_queued("bob@example.com", 3)
    # An `old` mailbox is relayed within milliseconds when not paused.
    assert stays(lambda: not holdd.sink_old.entries(), 3.0), "relayed while paused"

    assert holdd.ctl_json("resume")["paused"] is False
    got = holdd.sink_old.wait_for(3)
    assert [d["mail_from"] for d in got] == [f"s{n}@sender.test" for n in range(3)]
    holdd.wait_queued("bob@example.com", 0)
    assert holdd.status()["paused"] is False


def test_release_while_paused_replays_only_after_resume(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    holdd.ctl_json("pause")
    holdd.ctl_json("release", "anna@example.com")
    assert stays(lambda: not holdd.sink_new.entries(), 2.5), "relayed while paused"
    holdd.ctl_json("resume")
    assert holdd.sink_new.wait_for(1)[0]["mail_from"] == "a@sender.test"
