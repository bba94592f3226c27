"""PIPELINING (RFC 2920) really works: commands sent in one write get their replies
in order, and the message is queued."""
from helpers import RawSmtp, dot_stuff, make_message


def test_mail_rcpt_rcpt_data_in_one_write_get_ordered_replies(holdd):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    with RawSmtp(holdd.smtp_port) as s:
        assert s.read_reply()[0] == 220
        code, lines = s.command("EHLO client.test")
        assert code == 250
        assert any(l[4:].upper().startswith("PIPELINING") for l in lines), lines
        s.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<anna@example.com>\r\n"
               b"RCPT TO:<bob@example.com>\r\nDATA\r\n")
        codes = [s.read_reply()[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354]
        msg = make_message(1)
        s.send(dot_stuff(msg) + b".\r\n")  # dot-stuffed, as RFC 5321 4.5.2
        code, lines = s.read_reply()
        assert code == 250 and "queued as" in lines[0], lines
        assert s.command("QUIT")[0] == 221
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["a@b"]
    assert [m["size"] for m in holdd.queue("bob@example.com")] == [len(msg)]


def test_whole_transactions_pipelined_with_a_refused_recipient(holdd):
    holdd.ctl_json("lock", "anna@example.com", "bob@example.com")
    msg1, msg2 = make_message(1), make_message(2)
    with RawSmtp(holdd.smtp_port) as s:
        assert s.read_reply()[0] == 220
        assert s.command("EHLO client.test")[0] == 250
        # Second transaction: RSET, a refused recipient among good ones, then QUIT.
        s.send(b"MAIL FROM:<first@sender.test>\r\nRCPT TO:<anna@example.com>\r\nDATA\r\n")
        assert [s.read_reply()[0] for _ in range(3)] == [250, 250, 354]
        s.send(dot_stuff(msg1) + b".\r\nRSET\r\nMAIL FROM:<second@sender.test>\r\n"
               b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
        codes = [s.read_reply()[0] for _ in range(6)]
        assert codes == [250, 250, 250, 550, 250, 354], codes
        s.send(dot_stuff(msg2) + b".\r\nNOOP\r\nQUIT\r\n")
        assert [s.read_reply()[0] for _ in range(3)] == [250, 250, 221]
    assert [m["sender"] for m in holdd.queue("anna@example.com")] == ["first@sender.test"]
    assert [m["sender"] for m in holdd.queue("bob@example.com")] == ["second@sender.test"]
