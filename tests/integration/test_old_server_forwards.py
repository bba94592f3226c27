"""Mail the old server forwards (SPEC "The old server", issue 15): its client address
is in [upstream.old] forwarders (here 127.0.0.2, a second loopback address as the
client's source). It is stored and routed like any other mail, counted per mailbox,
in status, in the log and in /metrics; for a mailbox still `old` it is parked as a
loop, never sent back; `check --old-quiet` needs both directions quiet."""
import smtplib
import subprocess
import time
import urllib.request

import pytest

from helpers import make_message, stays, wait_until

ANNA, BOB = "anna@example.com", "bob@example.com"
OLD_SERVER = "127.0.0.2"
FORWARDERS = {"upstream": {"old": {"forwarders": [OLD_SERVER]}}}


def send_from(holdd, source, rcpt, n=0):
    with smtplib.SMTP("127.0.0.1", holdd.smtp_port, timeout=30, source_address=(source, 0)) as c:
        c.sendmail(f"s{n}@sender.test", [rcpt], make_message(n, to=rcpt))


def metric(holdd, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{holdd.metrics_port}/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def check(holdd, *args):
    r = holdd.ctl("check", *args)
    return r.returncode, r.stdout.strip()


@pytest.mark.holdd(config=FORWARDERS)
def test_forwarded_mail_is_counted_per_mailbox_in_status_log_and_metrics(holdd):
    holdd.ctl_json("lock", ANNA)
    assert metric(holdd, "holdd_old_forwarded_total") == 0
    assert metric(holdd, "holdd_old_forwarded_last_timestamp_seconds") == 0
    before = time.time()
    send_from(holdd, OLD_SERVER, ANNA, 0)
    send_from(holdd, OLD_SERVER, ANNA, 1)
    send_from(holdd, "127.0.0.1", ANNA, 2)  # an ordinary client: not counted
    show = holdd.ctl_json("show", ANNA)
    assert show["forwarded_by_old"] == 2 and show["last_forwarded"]
    status = holdd.status()
    assert status["forwarded_by_old"] == 2
    assert metric(holdd, "holdd_old_forwarded_total") == 2
    assert metric(holdd, "holdd_old_forwarded_last_timestamp_seconds") >= int(before)
    accepted = [line for line in holdd.log_text().splitlines() if ": accepted from=" in line]
    assert len(accepted) == 3
    assert sum("forwarded-by=old" in line for line in accepted) == 2, accepted
    assert "forwarded-by=old" not in accepted[-1]
    # Stored and routed like any other mail: held, then replayed in arrival order.
    assert len(holdd.queue(ANNA)) == 3
    holdd.ctl_json("release", ANNA, "--wait")
    assert [d["mail_from"] for d in holdd.sink_new.wait_for(3)] == [f"s{n}@sender.test" for n in range(3)]
    # The counts survive a restart (they are in the spool).
    holdd.restart()
    assert holdd.ctl_json("show", ANNA)["forwarded_by_old"] == 2
    assert holdd.status()["forwarded_by_old"] == 2


@pytest.mark.holdd(config=FORWARDERS)
def test_a_forward_for_a_mailbox_still_old_is_parked_as_a_loop_never_sent_back(holdd):
    send_from(holdd, OLD_SERVER, BOB, 0)
    wait_until(lambda: holdd.queue(BOB) and holdd.queue(BOB)[0]["parked"], 20,
               what="the forward to be parked")
    (entry,) = holdd.queue(BOB)
    assert "loop" in entry["last_error"], entry
    assert stays(lambda: not holdd.sink_old.entries(), 2.0)  # never relayed back
    # Ordinary mail for bob still goes to the old server.
    send_from(holdd, "127.0.0.1", BOB, 1)
    assert [d["mail_from"] for d in holdd.sink_old.wait_for(1)] == ["s1@sender.test"]
    # Once bob has moved, retry sends the forward to the new server.
    holdd.ctl_json("release", BOB)
    holdd.ctl_json("retry", BOB)
    assert [d["mail_from"] for d in holdd.sink_new.wait_for(1)] == ["s0@sender.test"]
    assert len(holdd.sink_old.deliveries()) == 1


@pytest.mark.holdd(config=FORWARDERS)
def test_old_quiet_needs_the_forwards_quiet_too(holdd):
    holdd.ctl_json("lock", ANNA)  # nothing is relayed to the old server
    assert check(holdd, "--old-quiet", "2s")[0] == 0
    send_from(holdd, OLD_SERVER, ANNA)
    code, line = check(holdd, "--old-quiet", "2s")
    assert code == 1 and "forward" in line, line
    time.sleep(3.2)
    code, line = check(holdd, "--old-quiet", "2s")
    assert code == 0, line


def test_forwarders_must_be_ip_addresses_of_the_old_upstream(holdd, tmp_path):
    for upstream, value, needle in (("old", ["mail.example.com"], "upstream.old.forwarders[0]"),
                                    ("new", ["127.0.0.2"], "forwarders")):
        config = dict(holdd.config)
        config["upstream"] = {k: dict(v) for k, v in holdd.config["upstream"].items()}
        config["upstream"][upstream]["forwarders"] = value
        from helpers import to_toml
        path = tmp_path / f"bad-{upstream}.toml"
        path.write_text(to_toml(config))
        r = subprocess.run([holdd.bin, "--check-config", "--config", str(path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        assert needle in r.stdout + r.stderr, r
