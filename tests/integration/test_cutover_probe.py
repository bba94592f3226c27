"""`holdctl probe` and `release --verify` (SPEC "The cutover helpers", issue 14):
holdd asks an upstream whether it knows each mailbox (EHLO/LHLO, MAIL FROM:<>,
RCPT TO, RSET; one connection for the whole list; nothing delivered), and a
verified release moves only the mailboxes the new server accepts."""
import json

import pytest

from helpers import make_message, stays

ANNA, BOB, CAROL, DAVE = (f"{n}@example.com" for n in ("anna", "bob", "carol", "dave"))


def probe_rows(result):
    return {m["mailbox"]: m for m in result["mailboxes"]}


@pytest.mark.holdd(start=False, sinks_up=False)
def test_probe_says_accepted_refused_unknown_on_one_connection_and_delivers_nothing(holdd):
    holdd.sink_new.record_commands = True
    holdd.sink_old.start()
    holdd.sink_new.start()
    holdd.start()
    holdd.sink_new.set_control({"rcpt": {BOB: "550 5.1.1 <bob@example.com>: no such user here",
                                         CAROL: "450 4.2.1 mailbox busy, try later"}})
    r = holdd.ctl("--json", "probe", ANNA, BOB, CAROL, DAVE)
    assert r.returncode == 1, r  # not all accepted
    result = json.loads(r.stdout)
    rows = probe_rows(result)
    assert rows[ANNA]["result"] == "accepted" and rows[ANNA]["reply"].startswith("250")
    assert rows[DAVE]["result"] == "accepted"
    assert rows[BOB]["result"] == "refused"
    assert rows[BOB]["reply"] == "550 5.1.1 <bob@example.com>: no such user here"
    assert rows[CAROL]["result"] == "unknown" and rows[CAROL]["reply"].startswith("450 4.2.1")
    assert result["upstream"] == "new"
    # Nothing delivered, one connection for the list, an empty reverse-path.
    assert stays(lambda: not holdd.sink_new.deliveries(), 1.0)
    verbs = [c["verb"] for c in holdd.sink_new.commands()]
    assert verbs.count("EHLO") == 1, verbs
    assert verbs.count("RCPT") == 4 and "DATA" not in verbs, verbs
    assert not holdd.sink_old.entries()
    # The text form: one line per mailbox with its verdict; exit 1.
    text = holdd.ctl("probe", ANNA, BOB)
    assert text.returncode == 1
    lines = {line.split()[0]: line for line in text.stdout.splitlines() if "@" in line}
    assert "accepted" in lines[ANNA] and "refused" in lines[BOB] and "no such user" in lines[BOB]
    # States are untouched.
    assert {holdd.ctl_json("show", m)["state"] for m in (ANNA, BOB, CAROL, DAVE)} == {"old"}


def test_probe_exits_0_when_all_are_accepted_and_asks_the_old_server_with_upstream_old(holdd):
    holdd.sink_new.set_control({"rcpt": {ANNA: "550 5.1.1 not here"}})
    r = holdd.ctl_json("probe", "--upstream", "old", ANNA, BOB)
    assert {m["result"] for m in r["mailboxes"]} == {"accepted"}
    assert r["upstream"] == "old"
    assert holdd.ctl("probe", "--upstream", "old", ANNA).returncode == 0
    assert holdd.ctl("probe", ANNA).returncode == 1  # the new server refuses anna
    assert holdd.ctl("probe", "--upstream", "elsewhere", ANNA).returncode == 2


def test_probe_of_an_unreachable_upstream_is_unknown_with_why(holdd):
    holdd.sink_new.stop()
    r = holdd.ctl("--json", "probe", ANNA, BOB)
    assert r.returncode == 1
    rows = probe_rows(json.loads(r.stdout))
    for m in (ANNA, BOB):
        assert rows[m]["result"] == "unknown"
        assert rows[m]["reply"], rows[m]  # says why (connection refused)


def test_probe_refuses_a_name_that_is_not_a_mailbox(holdd):
    r = holdd.ctl("probe", "nobody@example.com")
    assert r.returncode == 1 and "nobody@example.com" in r.stderr


@pytest.mark.holdd(new_lmtp=True)
def test_probe_speaks_lmtp_to_an_lmtp_upstream(holdd):
    holdd.sink_new.set_control({"rcpt": {BOB: "550 5.1.1 unknown user"}})
    r = holdd.ctl("--json", "probe", ANNA, BOB)
    assert r.returncode == 1, r
    rows = probe_rows(json.loads(r.stdout))
    assert rows[ANNA]["result"] == "accepted" and rows[BOB]["result"] == "refused"
    assert not holdd.sink_new.deliveries()


def test_release_verify_releases_only_what_the_new_server_accepts(holdd):
    holdd.ctl_json("lock", ANNA, BOB)
    for n, rcpt in enumerate((ANNA, BOB)):
        holdd.send(f"s{n}@sender.test", [rcpt], make_message(n, to=rcpt))
    holdd.sink_new.set_control({"rcpt": {BOB: "550 5.1.1 no such user"}})
    # --dry-run probes and shows; nothing changes.
    dry = holdd.ctl("--json", "release", "--verify", "--dry-run", ANNA, BOB)
    assert dry.returncode == 1, dry
    assert {holdd.ctl_json("show", m)["state"] for m in (ANNA, BOB)} == {"held"}
    assert "bob@example.com" in dry.stdout and "no such user" in dry.stdout
    # The real one: anna migrated and replayed, bob stays held and is listed.
    r = holdd.ctl("release", "--verify", "--wait", ANNA, BOB)
    assert r.returncode == 1, r
    assert "bob@example.com" in r.stdout + r.stderr and "no such user" in r.stdout + r.stderr
    assert holdd.ctl_json("show", ANNA)["state"] == "migrated"
    assert holdd.ctl_json("show", BOB)["state"] == "held"
    assert [d["rcpt"] for d in holdd.sink_new.wait_for(1)] == [ANNA]
    assert len(holdd.queue(BOB)) == 1
    # All accepted: exit 0.
    holdd.sink_new.set_control({})
    assert holdd.ctl("release", "--verify", BOB).returncode == 0
    assert holdd.ctl_json("show", BOB)["state"] == "migrated"
