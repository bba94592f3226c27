"""New mail for a mailbox that arrives while its backlog is being replayed (a slow
`release --rate`) reaches the new server after the whole backlog."""
from helpers import make_message, wait_until


def test_mail_sent_during_slow_replay_arrives_after_the_backlog(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(10):
        holdd.send(f"held{n}@sender.test", ["anna@example.com"], make_message(n))
    holdd.wait_queued("anna@example.com", 10)

    result = holdd.ctl_json("release", "anna@example.com", "--rate", "2")
    assert result["replay"]["messages"] == 10
    # Wait until the replay has visibly started but is far from done, then send more.
    holdd.sink_new.wait_for(1)
    for n in range(3):
        holdd.send(f"new{n}@sender.test", ["anna@example.com"], make_message(100 + n))
    assert len(holdd.sink_new.deliveries()) < 10, "--rate 2 did not slow the replay down: all 10 were out within a second"

    got = holdd.sink_new.wait_for(13, timeout=60)
    assert [d["mail_from"] for d in got] == (
        [f"held{n}@sender.test" for n in range(10)] + [f"new{n}@sender.test" for n in range(3)])
    wait_until(lambda: holdd.queue("anna@example.com") == [], 10, what="empty queue")


def test_release_rate_limits_only_that_release(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(6):
        holdd.send(f"held{n}@sender.test", ["anna@example.com"], make_message(n))
    holdd.ctl_json("release", "anna@example.com", "--rate", "2")
    # Meanwhile an `old` mailbox is served at full speed.
    holdd.send("other@sender.test", ["bob@example.com"], make_message(50, to="bob@example.com"))
    holdd.sink_old.wait_for(1)
    got = holdd.sink_new.wait_for(6, timeout=60)
    assert [d["mail_from"] for d in got] == [f"held{n}@sender.test" for n in range(6)]
