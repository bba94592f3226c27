"""[directory] recipients = "verify" (SPEC "The old server", issue 15): an address
that is neither listed nor an alias is asked of the old server, then of the new
one (MAIL FROM:<>, RCPT TO, RSET, as `holdctl probe`). Accepted by either: the
message is accepted and the address becomes a mailbox in initial_state. Refused by
both: 550 5.1.1. An upstream that does not answer: 450 4.1.1, never a 5xx. Answers
are cached (refusals for a tenth of verify_cache), and at most 4 probes run at once."""
import smtplib
import subprocess
import threading
import time
import urllib.request

import pytest

from helpers import DOMAIN, make_message, wait_until

OLDUSER, NEWUSER, NOBODY = (f"{n}@{DOMAIN}" for n in ("olduser", "newuser", "nobody"))
REFUSED = "550 5.1.1 <{}>: no such user here"

VERIFY = {"directory": {"recipients": "verify", "initial_state": "held", "verify_cache": "20s"}}


def rcpt_reply(holdd, rcpt, sender="someone@sender.test"):
    """(code, text) of RCPT TO:<rcpt> in a session of its own."""
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=60) as s:
        s.ehlo("client.test")
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        s.rset()
        return code, text.decode(errors="replace")


def asked(sink, rcpt=None):
    """The RCPT TO commands the sink received (for `rcpt` only, when given)."""
    return [c for c in sink.commands()
            if c["verb"] == "RCPT" and (rcpt is None or f"<{rcpt}>" in c.get("arg", ""))]


def know_only(sink, known, others):
    """The sink accepts `known` and refuses every address of `others` with a 5xx."""
    sink.set_control({"rcpt": {a: REFUSED.format(a) for a in others if a not in known}})


def start_recording(holdd):
    holdd.sink_old.record_commands = True
    holdd.sink_new.record_commands = True
    holdd.sink_old.start()
    holdd.sink_new.start()
    holdd.start()


@pytest.mark.holdd(config=VERIFY, start=False, sinks_up=False)
def test_accepted_by_old_or_new_becomes_a_held_mailbox_refused_by_both_is_550(holdd):
    start_recording(holdd)
    everyone = (OLDUSER, NEWUSER, NOBODY)
    know_only(holdd.sink_old, {OLDUSER}, everyone)
    know_only(holdd.sink_new, {NEWUSER}, everyone)

    assert rcpt_reply(holdd, OLDUSER)[0] == 250
    code, text = rcpt_reply(holdd, NEWUSER)
    assert code == 250, text
    code, text = rcpt_reply(holdd, NOBODY)
    assert (code, text[:5]) == (550, "5.1.1"), text
    # The old server is asked first; the new one only when the old refused.
    assert len(asked(holdd.sink_old, OLDUSER)) == 1 and not asked(holdd.sink_new, OLDUSER)
    assert len(asked(holdd.sink_old, NEWUSER)) == 1 and len(asked(holdd.sink_new, NEWUSER)) == 1
    assert len(asked(holdd.sink_old, NOBODY)) == 1 and len(asked(holdd.sink_new, NOBODY)) == 1
    # Probes deliver nothing.
    assert not holdd.sink_old.deliveries() and not holdd.sink_new.deliveries()

    # Mail for the verified addresses is taken and held (initial_state = "held");
    # a message to all three is accepted for the two that exist.
    msg = make_message("verify-1", message_id="<verify-1@test>")
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=60) as s:
        refused = s.sendmail("someone@sender.test", list(everyone), msg)
    assert list(refused) == [NOBODY] and refused[NOBODY][0] == 550
    for mailbox in (OLDUSER, NEWUSER):
        shown = holdd.ctl_json("show", mailbox)
        assert shown["state"] == "held", shown
    holdd.wait_queued(OLDUSER, 1)
    holdd.wait_queued(NEWUSER, 1)
    # A verified address is a mailbox of the spool now: lock/release name it, and
    # its next mail is taken without asking again, even after a restart.
    before = len(asked(holdd.sink_old)) + len(asked(holdd.sink_new))
    holdd.restart()
    assert rcpt_reply(holdd, NEWUSER)[0] == 250
    assert len(asked(holdd.sink_old)) + len(asked(holdd.sink_new)) == before
    assert holdd.ctl("release", "--wait", NEWUSER).returncode == 0
    delivered = holdd.sink_new.wait_for(1, rcpt=NEWUSER)
    assert delivered[0]["message_id"] == "<verify-1@test>"
    # The log says why an address was taken or refused.
    log = holdd.log_text()
    assert "verify: <newuser@example.com> is a mailbox: old refused" in log
    assert "verify: <nobody@example.com> unknown: old refused" in log


@pytest.mark.holdd(config=VERIFY, start=False, sinks_up=False)
def test_answers_are_cached_refusals_for_a_tenth_of_verify_cache(holdd):
    start_recording(holdd)
    know_only(holdd.sink_old, {OLDUSER}, (OLDUSER, NOBODY))
    know_only(holdd.sink_new, set(), (OLDUSER, NOBODY))
    # A held mailbox makes the spool know OLDUSER only once mail arrived: here no
    # mail is sent, so the cache alone answers the repeats.
    assert rcpt_reply(holdd, OLDUSER)[0] == 250
    assert rcpt_reply(holdd, NOBODY)[0] == 550
    old_rcpts, new_rcpts = len(asked(holdd.sink_old)), len(asked(holdd.sink_new))
    assert (old_rcpts, new_rcpts) == (2, 1)
    for _ in range(5):
        assert rcpt_reply(holdd, OLDUSER)[0] == 250
        assert rcpt_reply(holdd, NOBODY)[0] == 550
    assert (len(asked(holdd.sink_old)), len(asked(holdd.sink_new))) == (old_rcpts, new_rcpts)
    # 20s cache: a refusal is kept 2 s, an acceptance 20 s.
    time.sleep(2.5)
    assert rcpt_reply(holdd, NOBODY)[0] == 550
    assert rcpt_reply(holdd, OLDUSER)[0] == 250
    assert len(asked(holdd.sink_old, NOBODY)) == 2 and len(asked(holdd.sink_new, NOBODY)) == 2
    assert len(asked(holdd.sink_old, OLDUSER)) == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{holdd.metrics_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    # RCPTs: OLDUSER 7 known; NOBODY 7 unknown; probes: 2 + NOBODY's second.
    assert 'holdd_recipient_verify_total{result="known"} 7' in metrics, metrics
    assert 'holdd_recipient_verify_total{result="unknown"} 7' in metrics
    assert "holdd_recipient_verify_probes_total 3" in metrics


@pytest.mark.holdd(config=VERIFY, start=False, sinks_up=False)
def test_an_upstream_that_does_not_answer_gives_450_never_550_and_is_asked_again(holdd):
    start_recording(holdd)
    holdd.sink_old.stop()  # connection refused
    know_only(holdd.sink_new, {NEWUSER}, (NEWUSER, NOBODY))
    code, text = rcpt_reply(holdd, NOBODY)
    assert (code, text[:5]) == (450, "4.1.1"), text
    # The new server's yes is enough, whatever the old one says.
    assert rcpt_reply(holdd, NEWUSER)[0] == 250
    # A 4xx from the old server is no answer either.
    holdd.sink_old.start()
    holdd.sink_old.set_control({"rcpt": {NOBODY: "450 4.2.1 try again later"}})
    code, text = rcpt_reply(holdd, NOBODY)
    assert (code, text[:5]) == (450, "4.1.1"), text
    # Not cached: once the old server answers, its answer counts.
    holdd.sink_old.set_control({})
    assert rcpt_reply(holdd, NOBODY)[0] == 250
    # Both down: 450, and the message waits with the sender.
    holdd.sink_old.stop()
    holdd.sink_new.stop()
    other = f"someone.else@{DOMAIN}"
    assert rcpt_reply(holdd, other)[0] == 450


@pytest.mark.holdd(config=VERIFY, start=False, sinks_up=False)
def test_a_dictionary_attack_runs_at_most_4_probes_at_once_and_listed_mail_still_flows(holdd):
    start_recording(holdd)
    for sink in (holdd.sink_old, holdd.sink_new):
        sink.set_control({"rcpt_default": "550 5.1.1 no such user", "rcpt_delay": 0.05})
    replies = []
    lock = threading.Lock()

    def attacker(n):
        s = smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=120)
        s.ehlo("attacker.test")
        s.mail("spammer@attacker.test")
        for i in range(20):  # the 20th error ends the session (421 4.7.0)
            code, text = s.rcpt(f"guess{n}-{i}@{DOMAIN}")
            with lock:
                replies.append((code, text.decode(errors="replace")))
        s.close()

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(25)]
    for t in threads:
        t.start()
    # Meanwhile mail for a listed mailbox is not held up by the probes.
    time.sleep(0.5)
    started = time.monotonic()
    assert rcpt_reply(holdd, f"anna@{DOMAIN}")[0] == 250
    listed_took = time.monotonic() - started
    for t in threads:
        t.join(300)
    assert len(replies) == 500, len(replies)
    codes = {code for code, _ in replies}
    assert codes <= {550, 450, 421}, codes  # refused, or "later"; never accepted
    assert 550 in codes
    for sink in (holdd.sink_old, holdd.sink_new):
        rcpts = asked(sink)
        assert rcpts, sink.name
        peak = max(c["in_progress"] for c in rcpts)
        assert peak <= 4, (sink.name, peak)
    # The bound was really reached (the test could see a flood).
    assert max(max(c["in_progress"] for c in asked(s)) for s in (holdd.sink_old, holdd.sink_new)) >= 2
    assert len(asked(holdd.sink_old)) <= len(replies)
    assert listed_took < 5, listed_took


@pytest.mark.holdd(config={"directory": {"recipients": "verify"}, "upstream": {"old": None, "new": None}},
                   start=False)
def test_verify_without_upstreams_is_a_config_error(holdd):
    r = subprocess.run([holdd.bin, "--check-config", "--config", str(holdd.config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert "directory.recipients" in r.stderr and "verify" in r.stderr, r.stderr
    # With the upstreams it is a valid configuration.
    holdd.config = dict(holdd.config, upstream=holdd.default_config()["upstream"])
    holdd.write_config()
    r = subprocess.run([holdd.bin, "--check-config", "--config", str(holdd.config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
