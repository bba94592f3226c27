"""max_recipients: the recipient over the limit gets 452 4.5.3 (RFC 5321 4.5.3.1.8),
the ones before it are kept and the message is delivered to them."""
import pytest

from helpers import RawSmtp, dot_stuff, make_message


@pytest.mark.holdd(config={"server": {"max_recipients": 2}})
def test_third_recipient_gets_452_4_5_3_and_first_two_get_the_message(holdd):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com", "carol@example.com")
    msg = make_message(1)
    with RawSmtp(holdd.smtp_port) as s:
        s.read_reply()
        s.command("EHLO client.test")
        assert s.command("MAIL FROM:<many@sender.test>")[0] == 250
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("RCPT TO:<bob@example.com>")[0] == 250
        code, lines = s.command("RCPT TO:<carol@example.com>")
        assert code == 452 and lines[0][4:].startswith("4.5.3"), lines
        assert s.command("DATA")[0] == 354
        s.send(dot_stuff(msg) + b".\r\n")
        assert s.read_reply()[0] == 250
    assert len(holdd.queue("anna@example.com")) == 1
    assert len(holdd.queue("bob@example.com")) == 1
    assert holdd.queue("carol@example.com") == []
