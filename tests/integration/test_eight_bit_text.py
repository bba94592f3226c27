"""Issue 12: 8-bit text from the network is data, never a reason to fail (SPEC "SMTP
intake"). An old server that answers in Latin-1 must get each message once; a
client with a Latin-1 HELO gets its 250; 8-bit parameters are refused at the
command that carries them, never with a 4xx at the end of DATA.

The old server here is RawUpstream (raw_upstream.py): aiosmtpd speaks only UTF-8.
"""
import re
import time

import pytest

from helpers import RawSmtp, make_message, message_id_of, send, stays, wait_until
from raw_upstream import RawUpstream

LATIN1_OK = b"250 2.0.0 Message re\xe7u"
LATIN1_LATER = b"451 4.3.0 Essayez plus tard, d\xe9sol\xe9"
LATIN1_REFUSED = b"550 5.1.1 Destinataire inconnu: \xe9l\xe8ve"


@pytest.fixture
def upstream():
    server = RawUpstream()
    yield server
    server.stop()


def start_with(holdd, upstream):
    """holdd with the raw server as [upstream.old] (mailboxes start `old`)."""
    holdd.config["upstream"]["old"]["port"] = upstream.port
    holdd.write_config()
    holdd.start()


def log_lines(holdd, pattern):
    return [l for l in holdd.log_text().splitlines() if re.search(pattern, l)]


@pytest.mark.holdd(start=False)
def test_latin1_250_is_delivered_once(holdd, upstream):
    upstream.set_replies(data=LATIN1_OK)
    start_with(holdd, upstream)
    holdd.send("s@sender.test", ["anna@example.com"], make_message(1))
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery")
    # retry_min is 1s here: a delivery that could not be recorded came back every second.
    assert stays(lambda: len(upstream.delivered()) == 1, duration=4.0), \
        f"delivered {len(upstream.delivered())} times"
    wait_until(lambda: holdd.queue("anna@example.com") == [], what="an empty queue")
    show = holdd.ctl_json("show", "anna@example.com")
    assert show["last_delivery"]["reply"] == "old: 250 2.0.0 Message re\\xE7u", show
    assert log_lines(holdd, r'relayed to=<anna@example\.com> .*reply="250 2\.0\.0 Message re\\xE7u"')
    assert not log_lines(holdd, "could not record")


@pytest.mark.holdd(start=False)
def test_latin1_451_is_retried_with_backoff_then_delivered_once(holdd, upstream):
    upstream.set_replies(data=LATIN1_LATER)
    start_with(holdd, upstream)
    holdd.send("s@sender.test", ["anna@example.com"], make_message(2))
    wait_until(lambda: (holdd.queue("anna@example.com") or [{}])[0].get("attempts", 0) >= 2,
               what="two deferred attempts")
    entry = holdd.queue("anna@example.com")[0]
    assert "d\\xE9sol\\xE9" in entry["last_error"], entry
    # Backoff between retry_min (1s) and retry_max (2s): not one attempt per loop.
    time.sleep(2.5)
    attempts = holdd.queue("anna@example.com")[0]["attempts"]
    assert attempts <= 6, f"{attempts} attempts in about 5 s"
    upstream.set_replies(data=LATIN1_OK)
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery once the upstream takes it")
    assert stays(lambda: len(upstream.delivered()) == 1, duration=3.0)
    wait_until(lambda: holdd.queue("anna@example.com") == [], what="an empty queue")


@pytest.mark.holdd(start=False)
def test_latin1_550_parks_the_message(holdd, upstream):
    upstream.set_replies(rcpt=LATIN1_REFUSED)
    start_with(holdd, upstream)
    holdd.send("s@sender.test", ["anna@example.com"], make_message(3))
    wait_until(lambda: (holdd.queue("anna@example.com") or [{}])[0].get("parked", False),
               what="the message parked")
    entry = holdd.queue("anna@example.com")[0]
    assert "Destinataire inconnu: \\xE9l\\xE8ve" in entry["last_error"], entry
    tried = upstream.attempts
    assert stays(lambda: upstream.attempts == tried, duration=3.0), "a parked message was retried"
    assert holdd.status()["parked"] == 1
    assert log_lines(holdd, r'parked to=<anna@example\.com> .*\\xE9l\\xE8ve')
    # `retry` requeues it; the upstream now takes it, once.
    upstream.set_replies(rcpt=b"250 2.1.5 Ok", data=LATIN1_OK)
    assert holdd.ctl("retry", "anna@example.com").returncode == 0
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery after retry")
    assert stays(lambda: len(upstream.delivered()) == 1, duration=2.0)


@pytest.mark.holdd(start=False)
def test_latin1_helo_gets_250_and_is_relayed(holdd, upstream):
    start_with(holdd, upstream)
    msg = make_message(4)
    with RawSmtp(holdd.smtp_port) as c:
        assert c.read_reply()[0] == 220
        c.send(b"EHLO m\xfcller.example\r\n")
        assert c.read_reply()[0] == 250
        assert c.command("MAIL FROM:<s@sender.test>")[0] == 250
        assert c.command("RCPT TO:<anna@example.com>")[0] == 250
        assert c.command("DATA")[0] == 354
        c.send(msg + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines  # was 451 4.3.0: the record could not hold the HELO
        c.command("QUIT")
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery")
    content = upstream.delivered()[0][2]
    received = content.split(b"\r\n", 1)[0]
    # The Latin-1 byte is not written into the header every later hop parses.
    assert received.startswith(b"Received: from m?ller.example"), received
    assert message_id_of(content) == message_id_of(msg)
    show = holdd.ctl_json("queue", "anna@example.com")
    assert show["messages"] == []


@pytest.mark.holdd(start=False)
def test_eight_bit_parameters_are_refused_at_their_command(holdd, upstream):
    start_with(holdd, upstream)
    with RawSmtp(holdd.smtp_port) as c:
        assert c.read_reply()[0] == 220
        assert c.command("EHLO client.test")[0] == 250
        # ENVID is xtext (RFC 3461 4.4): an 8-bit byte is a syntax error, at MAIL.
        c.send(b"MAIL FROM:<s@sender.test> ENVID=abc\xe7\r\n")
        code, lines = c.read_reply()
        assert code == 501, lines
        assert c.command("MAIL FROM:<s@sender.test>")[0] == 250
        # ORCPT that is not UTF-8: refused at RCPT (relayed, the upstream would refuse it).
        c.send(b"RCPT TO:<anna@example.com> ORCPT=rfc822;\xe9l\xe8ve@example.com\r\n")
        code, lines = c.read_reply()
        assert code == 501, lines
        # A Latin-1 address: needs SMTPUTF8, and is not UTF-8 even then: a 5xx at RCPT.
        c.send(b"RCPT TO:<\xe9l\xe8ve@example.com>\r\n")
        code, lines = c.read_reply()
        assert 500 <= code < 600, lines
        # The transaction goes on with what was accepted.
        assert c.command("RCPT TO:<anna@example.com>")[0] == 250
        assert c.command("DATA")[0] == 354
        c.send(make_message(5) + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        c.command("QUIT")
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery")


@pytest.mark.holdd(start=False)
def test_latin1_sender_with_smtputf8_is_refused_or_relayed_never_deferred(holdd, upstream):
    start_with(holdd, upstream)
    with RawSmtp(holdd.smtp_port) as c:
        assert c.read_reply()[0] == 220
        assert c.command("EHLO client.test")[0] == 250
        c.send(b"MAIL FROM:<j\xf6rg@sender.test> SMTPUTF8\r\n")
        code, lines = c.read_reply()
        if code != 250:
            assert 500 <= code < 600, lines
            return
        assert c.command("RCPT TO:<anna@example.com>")[0] == 250
        assert c.command("DATA")[0] == 354
        c.send(make_message(6) + b".\r\n")
        code, lines = c.read_reply()
        assert code == 250, lines
        c.command("QUIT")
    wait_until(lambda: len(upstream.delivered()) == 1, what="the delivery")
