"""A message for a `held` mailbox is accepted, stays on holdd, and `holdctl queue`
lists the mailbox's messages in arrival order with sender, recipient and size (the
bytes the client sent, dot-stuffing undone, CRLF line ends)."""
import re
from datetime import datetime

from helpers import make_message, stays


def test_held_mailbox_lists_messages_in_arrival_order_with_size(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    sent = []
    for n in range(3):
        # Different sizes, so a wrong size or a wrong order cannot go unnoticed.
        msg = make_message(n, sender=f"s{n}@sender.test", body="line\r\n" * (10 + 50 * n))
        reply = holdd.send(f"s{n}@sender.test", ["anna@example.com"], msg)
        assert re.match(r"2\.0\.0 Ok: queued as \S+", reply), reply
        sent.append((f"s{n}@sender.test", len(msg), reply.rsplit(" ", 1)[1]))

    queued = holdd.queue("anna@example.com")
    assert [(m["sender"], m["size"]) for m in queued] == [(s, size) for s, size, _ in sent]
    assert [m["id"] for m in queued] == [qid for _, _, qid in sent]
    assert all(m["recipient"] == "anna@example.com" for m in queued)
    seqs = [m["seq"] for m in queued]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    arrivals = [datetime.strptime(m["arrival"], "%Y-%m-%dT%H:%M:%SZ") for m in queued]
    assert arrivals == sorted(arrivals)

    status = holdd.status()
    assert status["held"]["messages"] == 3
    assert status["mailboxes"]["held"] == 1
    # Held means held: neither upstream sees anything (relays are retried every 1-2 s).
    assert stays(lambda: not holdd.sink_old.entries() and not holdd.sink_new.entries(), 2.5)


def test_held_messages_survive_a_clean_restart(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    for n in range(2):
        holdd.send(f"s{n}@sender.test", ["anna@example.com"], make_message(n))
    holdd.restart()
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["s0@sender.test", "s1@sender.test"]
    assert holdd.ctl_json("show", "anna@example.com")["state"] == "held"
