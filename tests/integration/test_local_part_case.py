"""Addresses as people type them (issue 12 item 6): with the default
`[directory] local_part_case = "insensitive"`, Bob@, BOB@EXAMPLE.COM and bob@ are one
mailbox, bob@example.com, in intake, in lock and release, and in every holdctl
argument; the upstream still gets the address as the sender wrote it. With "exact"
they are not. A spool written with exact keys is found under any case after a
restart with the default."""
import smtplib

import pytest

from helpers import make_message, stays, wait_until

SPELLINGS = ["Bob@example.com", "BOB@EXAMPLE.COM", "bob@example.com"]


def rcpt_reply(holdd, address):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15) as client:
        client.ehlo("client.test")
        assert client.mail("a@sender.test")[0] == 250
        return client.rcpt(address)


def test_spellings_are_one_mailbox_held_and_released_in_arrival_order(holdd):
    locked = holdd.ctl_json("lock", "BOB@EXAMPLE.COM")
    assert locked["changed"] == ["bob@example.com"]
    sent = []
    for n, rcpt in enumerate(SPELLINGS):
        code, _ = rcpt_reply(holdd, rcpt)
        assert code == 250, rcpt  # recipients = "listed": bob@example.com is listed
        msg = make_message(n, sender=f"s{n}@sender.test", to=rcpt)
        holdd.send(f"s{n}@sender.test", [rcpt], msg)
        sent.append((f"s{n}@sender.test", rcpt))
    queued = holdd.wait_queued("bob@example.com", 3)
    assert [m["sender"] for m in queued] == [s for s, _ in sent]
    # Held: none of the three went anywhere.
    assert stays(lambda: not holdd.sink_old.entries() and not holdd.sink_new.entries(), 2.0)
    status = holdd.status()
    assert [m["mailbox"] for m in holdd.ctl_json("list", "--state", "held")["mailboxes"]] == ["bob@example.com"]
    assert status["accepted"]["messages"] == 3

    result = holdd.ctl_json("release", "Bob@Example.com", "--wait")
    assert result["changed"] == ["bob@example.com"]
    assert (result["delivered"], result["parked"], result["remaining"]) == (3, 0, 0)
    got = holdd.sink_new.deliveries()
    # Arrival order, and each rcpt as the client wrote it.
    assert [(d["mail_from"], d["rcpt"]) for d in got] == sent
    assert not holdd.sink_old.entries()
    show = holdd.ctl_json("show", "bOb@example.COM")
    assert show["mailbox"] == "bob@example.com" and show["state"] == "migrated"
    assert [(h["from"], h["to"]) for h in show["history"]] == [("old", "held"), ("held", "migrated")]
    assert show["delivered"] == 3


def test_two_spellings_in_one_transaction_are_one_copy(holdd):
    holdd.ctl_json("lock", "bob@example.com")
    holdd.send("a@sender.test", ["Bob@example.com", "bob@example.com"], make_message(1))
    queued = holdd.wait_queued("BOB@example.com", 1)
    assert queued[0]["sender"] == "a@sender.test"
    assert stays(lambda: len(holdd.queue("bob@example.com")) == 1, 1.0)


def test_every_holdctl_argument_folds(holdd, tmp_path):
    batch = tmp_path / "batch.txt"
    batch.write_text("# typed by a person\nBOB@Example.COM\nAnna@EXAMPLE.com\n")
    locked = holdd.ctl_json("lock", "--file", batch)
    assert sorted(locked["changed"]) == ["anna@example.com", "bob@example.com"]
    assert locked["state"] == "held"

    # A message the new server refuses is parked; retry with yet another spelling.
    holdd.sink_new.set_control({"data_contains": {"X-Test-Reject: yes": "554 5.6.0 content refused"}})
    holdd.send("p@sender.test", ["BoB@example.com"], make_message(1, extra_headers=["X-Test-Reject: yes"]))
    holdd.wait_queued("bob@example.com", 1)
    released = holdd.ctl_json("release", "--file", batch, "--wait")
    assert (released["delivered"], released["parked"], released["remaining"]) == (0, 1, 0)
    queue = holdd.ctl_json("queue", "BOB@EXAMPLE.COM")
    assert queue["mailbox"] == "bob@example.com"
    assert [(m["sender"], m["parked"]) for m in queue["messages"]] == [("p@sender.test", True)]
    holdd.sink_new.set_control({})
    assert holdd.ctl_json("retry", "bOB@example.com")["requeued"] == 1
    got = holdd.sink_new.wait_for(1)
    assert got[0]["rcpt"] == "BoB@example.com"
    wait_until(lambda: holdd.queue("Bob@example.com") == [], 10, what="an empty queue")

    reverted = holdd.ctl_json("revert", "ANNA@example.com", "BOB@example.com")
    assert sorted(reverted["changed"]) == ["anna@example.com", "bob@example.com"]
    assert sorted(m["mailbox"] for m in holdd.ctl_json("list")["mailboxes"]) == \
        ["anna@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]
    # Case does not make an unknown name known.
    r = holdd.ctl("lock", "Nobody@example.com")
    assert r.returncode == 1 and "Nobody@example.com" in r.stderr


@pytest.mark.holdd(config={"directory": {"local_part_case": "exact"}})
def test_exact_local_part_case_keeps_spellings_apart(holdd):
    code, text = rcpt_reply(holdd, "Bob@example.com")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert rcpt_reply(holdd, "bob@EXAMPLE.COM")[0] == 250  # the domain still folds
    r = holdd.ctl("lock", "BOB@EXAMPLE.COM")
    assert r.returncode == 1 and "unknown mailbox" in r.stderr, r.stderr
    assert holdd.ctl_json("lock", "bob@example.com")["changed"] == ["bob@example.com"]


@pytest.mark.holdd(config={"directory": {"local_part_case": "exact", "recipients": "any"}})
def test_a_spool_with_exact_keys_is_found_under_any_case_after_a_restart(holdd):
    # Under "exact" (as a holdd from before local_part_case), Bob@ is a mailbox of
    # its own: held here, with a message waiting, while bob@ relays to the old server.
    assert holdd.ctl_json("lock", "Bob@example.com")["changed"] == ["Bob@example.com"]
    holdd.send("held@sender.test", ["Bob@example.com"], make_message(1, to="Bob@example.com"))
    holdd.wait_queued("Bob@example.com", 1)
    holdd.send("old@sender.test", ["bob@example.com"], make_message(2))
    holdd.sink_old.wait_for(1, rcpt="bob@example.com")
    assert holdd.queue("bob@example.com") == []

    holdd.stop()
    del holdd.config["directory"]["local_part_case"]
    del holdd.config["directory"]["recipients"]  # back to the defaults
    holdd.write_config()
    holdd.start()
    assert "merged into bob@example.com (held)" in holdd.log_text()

    queued = holdd.ctl_json("queue", "bob@example.com")
    assert queued["mailbox"] == "bob@example.com" and queued["state"] == "held"
    assert [m["sender"] for m in queued["messages"]] == ["held@sender.test"]
    assert holdd.queue("BOB@EXAMPLE.COM") == queued["messages"]
    mailboxes = [m["mailbox"] for m in holdd.ctl_json("list")["mailboxes"]]
    assert "Bob@example.com" not in mailboxes and "bob@example.com" in mailboxes
    show = holdd.ctl_json("show", "Bob@example.com")
    assert show["delivered"] == 1  # bob@'s delivery to the old server, counted with it

    result = holdd.ctl_json("release", "bob@example.com", "--wait")
    assert (result["delivered"], result["parked"], result["remaining"]) == (1, 0, 0)
    got = holdd.sink_new.deliveries()
    assert [(d["mail_from"], d["rcpt"]) for d in got] == [("held@sender.test", "Bob@example.com")]
    # Restarting again does not migrate again.
    holdd.restart()
    assert holdd.log_text().count("mailbox keys folded to lower case") == 1


def test_sighup_keeps_the_running_rule(holdd):
    # The spool's keys were folded at start: switching rules without a restart
    # would file mail under keys lock and release do not see.
    holdd.config["directory"]["local_part_case"] = "exact"
    with open(holdd.mailboxes_path, "a") as f:
        f.write("Erin@example.com\n")
    holdd.write_config()
    holdd.reload()
    wait_until(lambda: "reload done" in holdd.log_text(), 15, what="the reload")
    assert "directory.local_part_case changes take effect only after a restart" in holdd.log_text()
    # The rest of the reload is taken (the new mailbox), under the running rule.
    assert rcpt_reply(holdd, "ERIN@example.com")[0] == 250
    assert rcpt_reply(holdd, "Bob@example.com")[0] == 250
    assert holdd.ctl_json("lock", "erin@EXAMPLE.com")["changed"] == ["erin@example.com"]
