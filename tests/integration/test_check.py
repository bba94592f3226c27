"""`holdctl check` is a standard monitoring plugin (Nagios/Icinga/Sensu): one status
line "HOLDD <STATE> - summary | perfdata", exit 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN. The rules are daemon/control/health_check.cpp's: held mail older than
--warn-age/--crit-age, parked mail, deliveries late past warn_after, low disk, and
with --old-quiet DUR anything relayed to (or queued for) the old server within DUR.
Ages are whole seconds and must be strictly over a threshold."""
import re
import subprocess
import time

import pytest

from helpers import binary, make_message, wait_until

CODES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
PERF = re.compile(r"^'?[a-z_]+'?=-?\d+(\.\d+)?(s|B|%)?(;[-\d:~@]*){0,4}$")


def check(holdd, *args):
    """Runs holdctl check; asserts the plugin format; returns (code, summary, perfdata)."""
    r = holdd.ctl("check", *args)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, f"plugin output must be one line: {r.stdout!r} (stderr {r.stderr!r})"
    line = lines[0]
    assert r.returncode in CODES, (r.returncode, line)
    assert line.startswith(f"HOLDD {CODES[r.returncode]} - "), (r.returncode, line)
    summary, bar, perf = line.partition(" | ")
    if r.returncode != 3:
        assert bar, f"no perfdata in {line!r}"
        for item in perf.split():
            assert PERF.match(item), f"bad perfdata item {item!r} in {line!r}"
    return r.returncode, summary, dict(i.split("=", 1) for i in perf.split())


def test_ok_when_idle_warning_when_parked_unknown_when_unreachable(holdd):
    code, summary, perf = check(holdd)
    assert code == 0, summary
    assert summary == "HOLDD OK - 0 held, 0 queued, 0 parked", summary
    assert perf["held"].split(";")[0] == "0" and perf["parked"].split(";")[0] == "0"
    # The default ages (24h, 72h) are the held_oldest_age thresholds.
    assert perf["held_oldest_age"].split(";")[1:3] == ["86400", "259200"], perf
    # --json gives the same as a document.
    doc = holdd.ctl_json("check")
    assert doc["code"] == 0 and doc["line"].startswith("HOLDD OK - ")

    # A 5xx from the upstream parks the message: WARNING.
    holdd.sink_old.set_control({"rcpt": {"bob@example.com": "550 5.1.1 unknown here"}})
    holdd.send("a@sender.test", ["bob@example.com"], make_message(1))
    wait_until(lambda: holdd.status()["parked"] == 1, 15, what="the message to be parked")
    code, summary, perf = check(holdd)
    assert code == 1, summary
    assert "1 parked" in summary and "holdctl retry" in summary, summary
    assert perf["parked"].startswith("1;"), perf

    # A check that cannot run is UNKNOWN, never CRITICAL.
    code, summary, _ = check(holdd, "--warn-age", "soon")
    assert code == 3 and "invalid duration" in summary, summary
    holdd.stop()
    code, summary, _ = check(holdd)
    assert code == 3 and "daemon unreachable" in summary, summary
    code, summary, _ = check(holdd, "--old-quiet", "72h")
    assert code == 3, summary


def test_held_mail_older_than_the_ages(holdd):
    holdd.ctl_json("lock", "anna@example.com")
    holdd.send("a@sender.test", ["anna@example.com"], make_message(1))
    # Young held mail is fine with the default ages.
    code, summary, _ = check(holdd)
    assert code == 0 and "1 held" in summary, summary
    time.sleep(2.2)  # the held message is now 2 s old: strictly over 1 s
    code, summary, perf = check(holdd, "--warn-age", "1s", "--crit-age", "1h")
    assert code == 1 and "held mail" in summary and "warning after 1s" in summary, summary
    code, summary, perf = check(holdd, "--warn-age", "1s", "--crit-age", "1s")
    assert code == 2 and "critical after 1s" in summary, summary
    age, warn, crit, _min = perf["held_oldest_age"].split(";")
    assert int(age.rstrip("s")) >= 2 and (warn, crit) == ("1", "1"), perf
    # Releasing it (delivered to the new server) clears the alert.
    holdd.ctl_json("release", "anna@example.com", "--wait")
    code, summary, _ = check(holdd, "--warn-age", "1s", "--crit-age", "1s")
    assert code == 0, summary


def test_old_quiet(holdd):
    # Nothing ever went to the old server: quiet.
    code, summary, perf = check(holdd, "--old-quiet", "72h")
    assert code == 0 and "nothing ever relayed to the old server" in summary, summary
    assert "old_quiet" not in perf  # no value to graph yet

    holdd.send("a@sender.test", ["bob@example.com"], make_message(1))  # bob is `old`
    holdd.sink_old.wait_for(1, "bob@example.com")
    wait_until(lambda: holdd.status()["queued"]["messages"] == 0, 10, what="the relay to finish")
    code, summary, perf = check(holdd, "--old-quiet", "72h")
    assert code == 1 and "old server still receiving" in summary, summary
    assert perf["old_quiet"].split(";")[1] == "259200:", perf
    # Without --old-quiet the same state is OK: recent relays to old are normal.
    assert check(holdd)[0] == 0

    time.sleep(2.2)
    code, summary, perf = check(holdd, "--old-quiet", "1s")
    assert code == 0 and "old server quiet for" in summary, summary
    assert int(perf["old_quiet"].split(";")[0].rstrip("s")) >= 2, perf

    # Mail still waiting for the old server (down now) is not quiet either.
    holdd.sink_old.stop()
    holdd.send("a@sender.test", ["bob@example.com"], make_message(2))
    code, summary, _ = check(holdd, "--old-quiet", "1s")
    assert code == 1 and "queued for the old server" in summary, summary


def test_check_that_cannot_run_is_unknown_not_critical(tmp_path):
    broken = tmp_path / "holdd.toml"
    broken.write_text('[server]\nmax_message_size = "fifty"\n')
    for args in (["--config", str(broken), "check"],
                 ["--config", str(tmp_path / "missing.toml"), "check"],
                 ["check", "--warn-age"]):
        r = subprocess.run([binary("HOLDCTL_BIN", "holdctl"), *args], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert r.returncode == 3 and r.stdout.startswith("HOLDD UNKNOWN - "), (args, r)
