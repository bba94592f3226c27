"""SIGHUP with a good and a bad configuration while a client is connected, and
SIGTERM draining: idle sessions get 421, a DATA that ends within
server.shutdown_grace is acknowledged and kept, a DATA still unfinished when the
grace runs out is never acknowledged and leaves nothing in the spool.
(test_sighup_reloads_directory.py covers a new mailbox after SIGHUP.)"""
import signal
import smtplib
import time

import pytest

from helpers import RawSmtp, make_message, merge, wait_until

GRACE = 2


def log_count(holdd, needle):
    return holdd.log_text().count(needle)


def size_advertised(port):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("client.test")
        return int(c.esmtp_features["size"])


def rcpt_code(port, rcpt):
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as c:
        c.ehlo("client.test")
        c.mail("a@sender.test")
        return c.rcpt(rcpt)[0]


def hup_and_wait(holdd, needle):
    before = log_count(holdd, needle)
    holdd.reload()
    wait_until(lambda: log_count(holdd, needle) > before, 10, what=f"{needle!r} in holdd's log")


def test_bad_config_is_refused_good_one_applies_open_session_survives(holdd):
    port = holdd.smtp_port
    assert size_advertised(port) == 10 * 1024 * 1024
    session = smtplib.SMTP("127.0.0.1", port, timeout=15)  # stays open throughout
    session.ehlo("client.test")

    # A broken configuration together with a new mailbox: refused as a whole.
    good = holdd.config
    with open(holdd.mailboxes_path, "a") as f:
        f.write("erin@example.com\n")
    holdd.config = merge(good, {"server": {"max_message_size": "fifty"}})
    holdd.write_config()
    hup_and_wait(holdd, "the running configuration stays in force")
    refused = [line for line in holdd.log_text().splitlines() if "reload refused" in line]
    assert any("max_message_size" in line for line in refused), refused
    assert holdd.running
    assert size_advertised(port) == 10 * 1024 * 1024   # old limits
    assert rcpt_code(port, "erin@example.com") == 550  # old directory
    # holdctl will not read a broken config for the socket path; --socket works.
    assert holdd.ctl("--socket", holdd.socket, "status", config=False).returncode == 0

    # The fixed configuration (with a new limit) is taken.
    holdd.config = merge(good, {"server": {"max_message_size": "1MiB"}})
    holdd.write_config()
    hup_and_wait(holdd, "reload done")
    assert size_advertised(port) == 1024 * 1024
    assert rcpt_code(port, "erin@example.com") == 250

    # The session opened before both reloads still works (with its own settings).
    holdd.ctl_json("lock", "anna@example.com")
    assert session.mail("b@sender.test")[0] == 250
    assert session.rcpt("anna@example.com")[0] == 250
    assert session.data(make_message(1))[0] == 250
    session.quit()
    assert len(holdd.queue("anna@example.com")) == 1


def open_in_data(port, body):
    """A session that has sent MAIL, RCPT, DATA and `body` (no final dot)."""
    c = RawSmtp(port)
    assert c.read_reply()[0] == 220
    assert c.command("EHLO client.test")[0] == 250
    assert c.command("MAIL FROM:<a@sender.test>")[0] == 250
    assert c.command("RCPT TO:<anna@example.com>")[0] == 250
    assert c.command("DATA")[0] == 354
    c.send(body)
    return c


def sigterm(holdd):
    """Sends SIGTERM; returns (process, time sent). The fixture's holdd.stop()
    is not used: the test watches the exit itself."""
    proc = holdd.proc
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    return proc, t0


def wait_exit(holdd, proc, t0, limit):
    proc.wait(limit + 10)
    elapsed = time.monotonic() - t0
    holdd.proc = None
    assert proc.returncode == 0, f"holdd exited {proc.returncode}:\n{holdd.log_text()}"
    assert elapsed < limit, f"holdd took {elapsed:.1f}s to exit (limit {limit}s)"
    return elapsed


SHORT_GRACE = pytest.mark.holdd(config={"server": {"shutdown_grace": f"{GRACE}s"}})


@SHORT_GRACE
def test_sigterm_cuts_off_an_unfinished_data_without_acknowledging_it(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    msg = make_message(1, body="Half of this never arrives.\r\n" * 20)
    client = open_in_data(holdd.smtp_port, msg[: len(msg) // 2])
    time.sleep(0.3)  # holdd has read the partial body
    proc, t0 = sigterm(holdd)
    # The client never sends the final dot: the grace runs out, the session is cut.
    replies = client.remaining_replies(timeout=GRACE + 8)
    client.close()
    wait_exit(holdd, proc, t0, GRACE + 5)
    assert not any(code == 250 for code, _ in replies), replies
    log = holdd.log_text()
    assert "accepted from=" not in log, log
    assert "still busy" in log, log  # the cut-off is logged

    holdd.start()
    assert holdd.queue("anna@example.com") == []
    status = holdd.status()
    assert status["queued"]["messages"] == 0 and status["accepted"]["messages"] == 0, status
    assert not holdd.sink_old.entries() and not holdd.sink_new.entries()


@SHORT_GRACE
def test_sigterm_drains_idle_sessions_get_421_a_data_in_progress_may_finish(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    msg = make_message(2, body="No line starts with a dot: no stuffing needed.\r\n")
    in_data = open_in_data(holdd.smtp_port, msg[:40])
    idle = RawSmtp(holdd.smtp_port)
    assert idle.read_reply()[0] == 220
    assert idle.command("EHLO client.test")[0] == 250
    just_connected = RawSmtp(holdd.smtp_port)
    assert just_connected.read_reply()[0] == 220
    time.sleep(0.2)

    proc, t0 = sigterm(holdd)
    for c in (idle, just_connected):
        replies = c.remaining_replies(timeout=5)
        assert replies and replies[0][0] == 421, replies
        assert replies[0][1][0].startswith("421 4.3.2 "), replies
        c.close()
    # The session in DATA is still being served: it finishes its message in time.
    time.sleep(0.3)
    in_data.send(msg[40:] + b".\r\n")
    code, lines = in_data.read_reply()
    assert code == 250 and "queued as" in lines[0], lines
    # ... and is then told the server is going away.
    replies = in_data.remaining_replies(timeout=5)
    assert replies and replies[0][0] == 421, replies
    in_data.close()
    wait_exit(holdd, proc, t0, GRACE + 5)

    holdd.start()
    queue = holdd.queue("anna@example.com")
    assert len(queue) == 1 and queue[0]["size"] == len(msg), queue
