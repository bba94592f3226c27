"""lock, 5 messages, nothing reaches the new server; `release --wait` replays the 5
to the new server in arrival order, each byte-identical to what was sent apart from
the headers holdd prepended, with envelope sender and recipient preserved."""
from helpers import make_message, split_prepended, stays


def test_release_wait_replays_held_messages_in_order_byte_identical(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    sent = []
    for n in range(5):
        sender = f"s{n}@sender.test"
        # Content that needs care on the way out: dot-stuffing, a long line, 8-bit-free.
        body = f"message {n}\r\n.\r\n..two dots\r\n{'x' * 900}\r\nend\r\n"
        msg = make_message(n, sender=sender, body=body)
        holdd.send(sender, ["anna@example.com"], msg)
        sent.append((sender, msg))
    holdd.wait_queued("anna@example.com", 5)
    assert stays(lambda: not holdd.sink_new.entries() and not holdd.sink_old.entries(), 2.5)

    result = holdd.ctl_json("release", "anna@example.com", "--wait")
    assert result["changed"] == ["anna@example.com"]
    assert result["state"] == "migrated"
    assert result["replay"]["messages"] == 5
    assert result["replay"]["bytes"] >= sum(len(m) for _, m in sent)
    assert (result["delivered"], result["parked"], result["remaining"]) == (5, 0, 0)

    got = holdd.sink_new.deliveries()
    assert len(got) == 5, got
    for (sender, msg), d in zip(sent, got):
        assert d["mail_from"] == sender
        assert d["rcpt"] == "anna@example.com"
        prepended = split_prepended(d["data"], msg)
        assert any(h.lower().startswith(b"received:") for h in prepended), prepended
        assert not any(h.lower().startswith(b"message-id:") for h in prepended), \
            "holdd must not add a Message-ID to a message that has one"
    assert holdd.queue("anna@example.com") == []
    assert not holdd.sink_old.entries()
    show = holdd.ctl_json("show", "anna@example.com")
    assert show["state"] == "migrated"
    assert [(h["from"], h["to"]) for h in show["history"]] == [("old", "held"), ("held", "migrated")]
    assert show["delivered"] == 5
    assert show["last_delivery"] is not None


def test_release_of_empty_mailbox_sends_later_mail_to_the_new_server(holdd):
    holdd.ctl_json("lock", "bob@example.com")
    result = holdd.ctl_json("release", "bob@example.com", "--wait")
    assert result["replay"]["messages"] == 0
    msg = make_message(1, to="bob@example.com")
    holdd.send("late@sender.test", ["bob@example.com"], msg)
    got = holdd.sink_new.wait_for(1)
    assert got[0]["rcpt"] == "bob@example.com" and got[0]["mail_from"] == "late@sender.test"
    split_prepended(got[0]["data"], msg)


def test_message_without_message_id_gets_one(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    msg = b"From: <x@sender.test>\r\nSubject: no id\r\n\r\nbody\r\n"
    holdd.send("x@sender.test", ["anna@example.com"], msg)
    holdd.ctl_json("release", "anna@example.com", "--wait")
    got = holdd.sink_new.wait_for(1)
    prepended = split_prepended(got[0]["data"], msg)
    assert any(h.lower().startswith(b"message-id:") for h in prepended), prepended
