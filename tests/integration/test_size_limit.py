"""max_message_size: advertised with SIZE, refused with 552 5.3.4 at MAIL when the
declared SIZE= is over it, and at the end of DATA when the body is over it."""
import pytest

from helpers import RawSmtp, make_message

LIMIT = 10 * 1024


@pytest.mark.holdd(config={"server": {"max_message_size": "10KiB"}})
def test_ehlo_advertises_the_limit(holdd):
    with RawSmtp(holdd.smtp_port) as s:
        s.read_reply()
        code, lines = s.command("EHLO client.test")
        assert code == 250
        assert f"SIZE {LIMIT}" in [l[4:] for l in lines], lines


@pytest.mark.holdd(config={"server": {"max_message_size": "10KiB"}})
def test_declared_size_over_limit_is_refused_at_mail(holdd):
    with RawSmtp(holdd.smtp_port) as s:
        s.read_reply()
        s.command("EHLO client.test")
        code, lines = s.command(f"MAIL FROM:<big@sender.test> SIZE={LIMIT + 1}")
        assert code == 552 and lines[0][4:].startswith("5.3.4"), lines
        # The session goes on: a declared size within the limit is fine.
        assert s.command(f"MAIL FROM:<ok@sender.test> SIZE={LIMIT}")[0] == 250
    assert holdd.status()["accepted"]["messages"] == 0


@pytest.mark.holdd(config={"server": {"max_message_size": "10KiB"}})
def test_body_over_limit_is_refused_at_end_of_data_and_not_stored(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    big = make_message(1, body=("x" * 78 + "\r\n") * (LIMIT // 80 + 10))
    assert len(big) > LIMIT
    small = make_message(2, body=("x" * 78 + "\r\n") * (LIMIT // 80 - 10))
    assert len(small) < LIMIT
    with RawSmtp(holdd.smtp_port) as s:
        s.read_reply()
        s.command("EHLO client.test")
        assert s.command("MAIL FROM:<big@sender.test>")[0] == 250  # no SIZE= declared
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("DATA")[0] == 354
        s.send(big + b".\r\n")
        code, lines = s.read_reply()
        assert code == 552 and lines[0][4:].startswith("5.3.4"), lines
        # Still in sync: the next transaction in the same session works.
        assert s.command("MAIL FROM:<small@sender.test>")[0] == 250
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("DATA")[0] == 354
        s.send(small + b".\r\n")
        assert s.read_reply()[0] == 250
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["small@sender.test"]
