"""kill -9 of holdd in the middle of a replay, then restart: every message arrives at
least once, and the order of first arrivals is the arrival order."""
from helpers import make_message, wait_until


def first_arrivals(sink):
    seen, order = set(), []
    for d in sink.deliveries("anna@example.com"):
        if d["message_id"] not in seen:
            seen.add(d["message_id"])
            order.append(d["message_id"])
    return order


def test_kill_9_during_replay_loses_nothing_and_keeps_order(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    ids = []
    for n in range(12):
        msg = make_message(n)
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], msg)
        ids.append(msg.split(b"\r\n", 1)[0].split(b": ", 1)[1].decode())
    holdd.ctl_json("release", "anna@example.com", "--rate", "3")
    holdd.sink_new.wait_for(3, timeout=30)
    holdd.kill9()
    assert len(first_arrivals(holdd.sink_new)) < 12, "--rate 3 did not slow the replay down"

    holdd.start()
    assert holdd.ctl_json("show", "anna@example.com")["state"] == "migrated"
    wait_until(lambda: len(first_arrivals(holdd.sink_new)) == 12, 90,
               what="all 12 messages at the new server")
    assert first_arrivals(holdd.sink_new) == ids
    wait_until(lambda: holdd.queue("anna@example.com") == [], 30, what="empty queue")
    # At-least-once, and a duplicate only for the one message in flight at the kill.
    assert len(holdd.sink_new.deliveries()) <= 13
    assert not holdd.sink_old.entries()
