"""SMTP smuggling: only <CR><LF>.<CR><LF> ends DATA. A body that hides a second
transaction behind <LF>.<CR><LF>, <CR><LF>.<LF> and friends gives exactly one
message; the hidden MAIL/RCPT/DATA are content, never commands. Bare CR and LF are
stored as CRLF, so no upstream can later be tricked either."""
import re
import uuid

import pytest

from helpers import RawSmtp

HIDDEN = (b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n"
          b"From: <ceo@example.com>\r\nSubject: smuggled\r\n\r\nwire money\r\n")
SEPARATORS = {"lf-dot-crlf": b"\n.\r\n", "crlf-dot-lf": b"\r\n.\n", "lf-dot-lf": b"\n.\n",
              "cr-dot-cr": b"\r.\r", "crlf-dot-cr": b"\r\n.\r",
              # issue 7: the rest of the 2023 research's variants, and NUL bytes
              "cr-dot-crlf": b"\r.\r\n", "crlf-nul-dot-crlf": b"\r\n\x00.\r\n",
              "crlf-dot-nul-crlf": b"\r\n.\x00\r\n", "crlf-dot-crnul-lf": b"\r\n.\r\x00\n",
              "lf-nul-dot-lf": b"\n\x00.\n", "crlf-crlf-dot-lf": b"\r\n\r\n.\n"}


def wire_body(sep):
    head = (f"Message-ID: <{uuid.uuid4().hex}@sender.test>\r\nFrom: <legit@sender.test>\r\n"
            "Subject: hello\r\n\r\nhello").encode()
    return head + sep + HIDDEN


def stored_form(wire):
    """What SPEC says holdd stores for DATA content `wire` (without the final dot
    line): dot-stuffing undone on lines that begin after a CRLF, then every bare CR
    or LF made a CRLF."""
    lines = wire.split(b"\r\n")
    assert lines[-1] == b""
    unstuffed = b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines[:-1]) + b"\r\n"
    return re.sub(rb"\r\n|\r|\n", b"\r\n", unstuffed)


def smuggle(port, sep):
    wire = wire_body(sep)
    with RawSmtp(port) as s:
        assert s.read_reply()[0] == 220
        assert s.command("EHLO client.test")[0] == 250
        assert s.command("MAIL FROM:<legit@sender.test>")[0] == 250
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("DATA")[0] == 354
        s.send(wire + b".\r\n")
        code, lines = s.read_reply()
        assert code == 250, lines
        s.send(b"QUIT\r\n")
        rest = s.remaining_replies()
    # Nothing but the 221: no reply to a smuggled MAIL, RCPT or DATA.
    assert [c for c, _ in rest] == [221], rest
    return wire


@pytest.mark.parametrize("sep", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_smuggled_transaction_is_content_of_the_one_message(holdd, sep):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    wire = smuggle(holdd.smtp_port, sep)
    queued = holdd.queue("anna@example.com")
    assert [m["sender"] for m in queued] == ["legit@sender.test"]
    assert queued[0]["size"] == len(stored_form(wire))
    assert holdd.queue("bob@example.com") == []
    assert holdd.status()["accepted"]["messages"] == 1


@pytest.mark.parametrize("sep", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_smuggled_content_reaches_upstream_normalized_as_one_message(holdd, sep):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    wire = smuggle(holdd.smtp_port, sep)
    holdd.ctl_json("release", "anna@example.com", "--wait")
    got = holdd.sink_new.wait_for(1)
    assert len(got) == 1 and got[0]["rcpt"] == "anna@example.com"
    assert got[0]["mail_from"] == "legit@sender.test"
    assert got[0]["data"].endswith(stored_form(wire))
    assert not holdd.sink_old.entries()
    assert all(d["rcpt"] != "bob@example.com" for d in holdd.sink_new.deliveries())


def test_bare_lf_or_cr_inside_a_command_never_splits_it(holdd):
    """Command-level smuggling: "MAIL FROM:<a>\\nRCPT TO:<b>\\r\\n" is one line holding
    a bare LF, refused as a whole (500 5.5.2); it never becomes two commands."""
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    with RawSmtp(holdd.smtp_port) as s:
        assert s.read_reply()[0] == 220
        assert s.command("EHLO client.test")[0] == 250
        for sep in (b"\n", b"\r", b"\x00\n"):
            s.send(b"MAIL FROM:<evil@attacker.test>" + sep + b"RCPT TO:<bob@example.com>\r\n")
            code, lines = s.read_reply()
            assert code == 500 and lines[0][4:].startswith("5.5.2"), (sep, lines)
        # No transaction was started by the hidden MAIL.
        assert s.command("RCPT TO:<bob@example.com>")[0] == 503
        s.send(b"QUIT\r\n")
        assert [c for c, _ in s.remaining_replies()] == [221]
    assert holdd.queue("bob@example.com") == []
