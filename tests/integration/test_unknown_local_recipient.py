"""With recipients = "listed", an unknown address in a served domain gets 550 5.1.1;
with recipients = "any" it is accepted and queued for a new mailbox in state old."""
import smtplib

import pytest

from helpers import make_message


def test_unknown_local_recipient_gets_550_5_1_1(holdd):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15) as client:
        client.ehlo("client.test")
        assert client.mail("a@sender.test")[0] == 250
        code, text = client.rcpt("nobody@example.com")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        # Case does not make a name known: Nobody is as unknown as nobody.
        code, text = client.rcpt("Nobody@example.com")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        # The domain, and by default the local part, compare case-insensitively
        # (test_local_part_case.py has the rest).
        assert client.rcpt("anna@EXAMPLE.COM")[0] == 250
        assert client.rcpt("Anna@example.com")[0] == 250
    assert holdd.status()["accepted"]["messages"] == 0


@pytest.mark.holdd(config={"directory": {"recipients": "any"}})
def test_recipients_any_accepts_unknown_local_recipient_as_old(holdd):
    holdd.send("a@sender.test", ["newcomer@example.com"], make_message(1, to="newcomer@example.com"))
    got = holdd.sink_old.wait_for(1, rcpt="newcomer@example.com")
    assert got[0]["mail_from"] == "a@sender.test"
