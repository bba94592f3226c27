"""SIGHUP reloads the directory files (mailboxes, aliases) without dropping
connections."""
import smtplib

from helpers import make_message, wait_until


def rcpt_code(port, rcpt):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("client.test")
        c.mail("a@sender.test")
        return c.rcpt(rcpt)[0]


def test_new_mailbox_is_known_after_sighup_and_open_session_survives(holdd):
    assert rcpt_code(holdd.smtp_port, "erin@example.com") == 550
    session = smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=15)
    session.ehlo("client.test")
    with open(holdd.mailboxes_path, "a") as f:
        f.write("erin@example.com\n")
    holdd.reload()
    wait_until(lambda: rcpt_code(holdd.smtp_port, "erin@example.com") == 250, 15,
               what="erin@ accepted after SIGHUP")
    # The session opened before the reload still works.
    holdd.ctl_json("lock", "anna@example.com")
    assert session.mail("b@sender.test")[0] == 250
    assert session.rcpt("anna@example.com")[0] == 250
    assert session.data(make_message(1))[0] == 250
    session.quit()
    assert len(holdd.queue("anna@example.com")) == 1
