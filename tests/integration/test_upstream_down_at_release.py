"""Upstream down at release time: the messages are deferred (retried with backoff),
nothing is lost or reordered, and all arrive, once each, when it is back."""
from helpers import make_message, wait_until


def test_release_while_new_server_is_down_delivers_all_in_order_once_it_is_back(holdd):
    holdd.sink_new.stop()
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(5):
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], make_message(n))
    result = holdd.ctl_json("release", "anna@example.com")
    assert result["replay"]["messages"] == 5

    # At least two attempts on the head of the queue (retry_min is 1s), all still queued.
    def retried():
        q = holdd.queue("anna@example.com")
        return len(q) == 5 and q[0]["attempts"] >= 2 and q[0]["last_error"]
    wait_until(retried, 30, what="a deferred head of queue with 2+ attempts")
    queue = holdd.queue("anna@example.com")
    assert [m["sender"] for m in queue] == [f"s{n}@sender.test" for n in range(5)]
    assert not any(m["parked"] for m in queue), "a connection failure is temporary, never parks"
    assert holdd.status()["deferred"] >= 1
    assert holdd.ctl_json("show", "anna@example.com")["last_error"] is not None

    holdd.sink_new.start()
    got = holdd.sink_new.wait_for(5, timeout=60)
    wait_until(lambda: holdd.queue("anna@example.com") == [], 30, what="empty queue")
    got = holdd.sink_new.deliveries()
    assert [d["mail_from"] for d in got] == [f"s{n}@sender.test" for n in range(5)]
    assert not holdd.sink_old.entries()


def test_upstream_4xx_defers_and_keeps_order(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(3):
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], make_message(n))
    holdd.sink_new.set_control({"data": {"anna@example.com": "451 4.3.0 try again later"}})
    holdd.ctl_json("release", "anna@example.com")
    wait_until(lambda: len(holdd.sink_new.refusals()) >= 2, 30, what="two 4xx answers")
    # FIFO: the head is retried, the next ones were not tried past it.
    assert {e["mail_from"] for e, _ in holdd.sink_new.refusals()} == {"s0@sender.test"}
    holdd.sink_new.set_control({})
    got = holdd.sink_new.wait_for(3, timeout=60)
    assert [d["mail_from"] for d in got] == [f"s{n}@sender.test" for n in range(3)]
