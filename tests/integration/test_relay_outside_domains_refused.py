"""holdd is never an open relay: a recipient outside [directory] domains gets
550 5.7.1 and nothing is stored."""
import smtplib

from helpers import RawSmtp


def test_recipient_outside_domains_gets_550_5_7_1_and_nothing_is_stored(holdd):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15) as client:
        client.ehlo("client.test")
        assert client.mail("spammer@sender.test")[0] == 250
        code, text = client.rcpt("victim@elsewhere.test")
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
        # Also a subdomain of a served domain is outside.
        code, text = client.rcpt("x@sub.example.com")
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
        code, _ = client.docmd("DATA")
        assert code in (503, 554), code  # no valid recipients: no DATA
    status = holdd.status()
    assert status["accepted"]["messages"] == 0
    assert status["queued"]["messages"] == 0
    assert not holdd.sink_old.entries() and not holdd.sink_new.entries()


def test_relay_attempt_with_percent_hack_or_source_route_is_refused(holdd):
    with RawSmtp(holdd.smtp_port) as s:
        assert s.read_reply()[0] == 220
        assert s.command("EHLO client.test")[0] == 250
        assert s.command("MAIL FROM:<a@sender.test>")[0] == 250
        for rcpt in ("<victim%elsewhere.test@example.com>", "<@example.com:victim@elsewhere.test>"):
            code, lines = s.command(f"RCPT TO:{rcpt}")
            assert 500 <= code < 600, (rcpt, lines)
    assert holdd.status()["queued"]["messages"] == 0
