"""Limits get their proper replies: too many connections from one address 421 4.7.0;
a message with more than max_hops Received: headers is a mail loop, 554 5.4.6."""
import pytest

from helpers import RawSmtp, dot_stuff, make_message, wait_until


@pytest.mark.holdd(config={"server": {"max_connections_per_ip": 2}})
def test_connection_over_per_ip_limit_gets_421_4_7_0(holdd):
    # The fixture's banner probe may still be closing: start from no connection.
    wait_until(lambda: holdd.ctl_json("status")["connections_open"] == 0, what="probe closed")
    first, second = RawSmtp(holdd.smtp_port), RawSmtp(holdd.smtp_port)
    try:
        assert first.read_reply()[0] == 220
        assert second.read_reply()[0] == 220
        with RawSmtp(holdd.smtp_port) as third:
            code, lines = third.read_reply()
            assert code == 421 and lines[0][4:].startswith("4.7.0"), lines
    finally:
        first.close()
        second.close()


@pytest.mark.holdd(config={"server": {"max_hops": 5}})
def test_message_with_too_many_received_headers_gets_554_5_4_6(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    hops = [f"Received: from hop{n}.test by hop{n + 1}.test; Mon, 23 Nov 2026 16:49:24 +0000"
            for n in range(6)]
    with RawSmtp(holdd.smtp_port) as s:
        s.read_reply()
        s.command("EHLO client.test")
        assert s.command("MAIL FROM:<loop@sender.test>")[0] == 250
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("DATA")[0] == 354
        s.send(dot_stuff(make_message(1, extra_headers=hops)) + b".\r\n")
        code, lines = s.read_reply()
        assert code == 554 and lines[0][4:].startswith("5.4.6"), lines
        # Within the limit is fine.
        assert s.command("MAIL FROM:<ok@sender.test>")[0] == 250
        assert s.command("RCPT TO:<anna@example.com>")[0] == 250
        assert s.command("DATA")[0] == 354
        s.send(dot_stuff(make_message(2, extra_headers=hops[:4])) + b".\r\n")
        assert s.read_reply()[0] == 250
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["ok@sender.test"]
