"""A 4xx from the upstream for message n stops the mailbox: message n+1 is not sent
before n is accepted (n is retried with backoff first), even now that holdd sends a
mailbox's next message before the previous one's removal is committed (issue 16)."""
import pytest

from helpers import stays, wait_until


def seq_of(data):
    for line in data.split(b"\r\n"):
        if line.startswith(b"X-Seq: "):
            return int(line[7:])
    return None


def attempts(sink):
    """(seq, accepted) of every transaction the sink saw, in order."""
    return [(seq_of(e["data"]), e["rcpts"][0]["reply"].startswith("2"))
            for e in sink.entries() if "refused_at" not in e]


@pytest.mark.holdd(config={"delivery": {"pipeline": 16}})
def test_4xx_on_message_n_keeps_n_plus_1_back_until_n_is_accepted(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(6):
        msg = (f"Message-ID: <{n}.defer@sender.test>\r\nX-Seq: {n}\r\n"
               f"Subject: defer {n}\r\n\r\nbody {n}\r\n").encode()
        holdd.send("s@sender.test", ["anna@example.com"], msg)
    holdd.wait_queued("anna@example.com", 6)
    holdd.sink_new.set_control({"data_contains": {"X-Seq: 3\r\n": "451 4.3.0 try again later"}})
    holdd.ctl_json("release", "anna@example.com")

    # Message 3 is refused at least twice (retry_min 1s): messages 4 and 5 wait.
    wait_until(lambda: [a for a in attempts(holdd.sink_new) if a == (3, False)][1:], 15,
               what="message 3 refused twice")
    assert stays(lambda: all(seq in (0, 1, 2, 3) for seq, _ in attempts(holdd.sink_new)), 1.5)
    assert [seq for seq, ok in attempts(holdd.sink_new) if ok] == [0, 1, 2]
    show = holdd.ctl_json("show", "anna@example.com")
    assert show["queued"] == 3 and show["last_error"] is not None

    holdd.sink_new.set_control({})
    wait_until(lambda: len([a for a in attempts(holdd.sink_new) if a[1]]) == 6, 15,
               what="all 6 accepted")
    seen = attempts(holdd.sink_new)
    assert [seq for seq, ok in seen if ok] == [0, 1, 2, 3, 4, 5]
    first_4 = next(i for i, (seq, _) in enumerate(seen) if seq == 4)
    accepted_3 = next(i for i, a in enumerate(seen) if a == (3, True))
    assert accepted_3 < first_4, seen
    assert all(ok for seq, ok in seen if seq != 3), seen
    wait_until(lambda: holdd.queue("anna@example.com") == [], 10, what="an empty queue")
