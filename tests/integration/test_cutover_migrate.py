"""`holdctl migrate` (SPEC "The cutover helpers", issue 14): the cutover of a batch
in one command. For each mailbox: lock, run the operator's copy command, release
when it exits 0; failures stay held and are reported with their log; a rerun does
what is left without duplicates; signals, timeouts, --verify, --dry-run, --json."""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import make_message, stays, wait_until

ANNA, BOB, CAROL, DAVE = (f"{n}@example.com" for n in ("anna", "bob", "carol", "dave"))


def batch_file(tmp_path, *mailboxes):
    path = tmp_path / "batch1.txt"
    path.write_text("# batch 1\n" + "\n".join(mailboxes) + "\n\n")
    return path


def hold_mail(holdd, *mailboxes):
    """Locks the mailboxes and queues one message for each: the held mail that
    migrate replays after the copy."""
    holdd.ctl_json("lock", *mailboxes)
    for n, m in enumerate(mailboxes):
        holdd.send(f"s{n}@sender.test", [m], make_message(n, to=m))


def states(holdd, *mailboxes):
    return {m: holdd.ctl_json("show", m)["state"] for m in mailboxes}


def test_migrate_copies_releases_and_a_rerun_does_only_what_is_left(holdd, tmp_path):
    hold_mail(holdd, ANNA, BOB, CAROL)
    batch = batch_file(tmp_path, ANNA, BOB, CAROL)
    copies = tmp_path / "copies.txt"
    logs = tmp_path / "logs"
    # The copy "fails" for bob only; it sees its mailbox in the arguments and the
    # environment, and prints something into its log.
    copy = (f"echo copy {{mailbox}} \"$HOLDD_LOCAL\" at \"$HOLDD_DOMAIN\"; "
            f"echo {{mailbox}} {{local}} {{domain}} >> {copies}; "
            f"test \"$HOLDD_LOCAL\" != bob || {{ echo 'imap: login failed' >&2; exit 3; }}")
    r = holdd.ctl("migrate", "--file", batch, "--copy", copy, "--parallel", "2", "--log-dir", logs)
    assert r.returncode == 1, r  # bob failed
    assert states(holdd, ANNA, BOB, CAROL) == {ANNA: "migrated", BOB: "held", CAROL: "migrated"}
    assert sorted(copies.read_text().splitlines()) == sorted(
        [f"{ANNA} anna example.com", f"{BOB} bob example.com", f"{CAROL} carol example.com"])
    # Their held mail was replayed to the new server; bob's waits.
    assert sorted(d["rcpt"] for d in holdd.sink_new.wait_for(2)) == [ANNA, CAROL]
    assert len(holdd.queue(BOB)) == 1
    # Each copy's output is in DIR/<mailbox>.log; the failure names its log.
    assert "copy anna@example.com anna at example.com" in (logs / f"{ANNA}.log").read_text()
    assert "imap: login failed" in (logs / f"{BOB}.log").read_text()
    assert BOB in r.stdout and "exited 3" in r.stdout and str(logs / f"{BOB}.log") in r.stdout
    # The attempts are in the mailbox's history.
    notes = [h.get("note", "") for h in holdd.ctl_json("show", BOB)["history"]]
    assert any("copy started" in n for n in notes), notes
    assert any("exited 3" in n for n in notes), notes
    anna_notes = [h.get("note", "") for h in holdd.ctl_json("show", ANNA)["history"]]
    assert any("exited 0" in n for n in anna_notes), anna_notes

    # The same command again, bob's copy now working: only bob is copied.
    copies.write_text("")
    again = holdd.ctl("migrate", "--file", batch, "--copy", f"echo {{mailbox}} >> {copies}",
                      "--log-dir", tmp_path / "logs2")
    assert again.returncode == 0, again
    assert copies.read_text().split() == [BOB]
    assert states(holdd, ANNA, BOB, CAROL) == {ANNA: "migrated", BOB: "migrated", CAROL: "migrated"}
    deliveries = holdd.sink_new.wait_for(3)
    assert stays(lambda: len(holdd.sink_new.deliveries()) == 3, 1.5)  # no duplicates
    assert sorted(d["rcpt"] for d in deliveries) == [ANNA, BOB, CAROL]


def test_migrate_dry_run_shows_the_plan_and_changes_nothing(holdd, tmp_path):
    hold_mail(holdd, ANNA)
    holdd.ctl_json("release", DAVE)  # already migrated: skipped
    marker = tmp_path / "ran"
    r = holdd.ctl("--json", "migrate", ANNA, CAROL, DAVE, "--copy", f"touch {marker}", "--dry-run")
    assert r.returncode == 0, r
    plan = {m["mailbox"]: m for m in json.loads(r.stdout)["mailboxes"]}
    assert plan[ANNA]["queued"] == 1 and plan[ANNA]["state"] == "held"
    assert plan[CAROL]["state"] == "old"
    assert "skip" in plan[DAVE]["action"]
    assert not marker.exists()
    assert states(holdd, ANNA, CAROL, DAVE) == {ANNA: "held", CAROL: "old", DAVE: "migrated"}
    text = holdd.ctl("migrate", ANNA, CAROL, DAVE, "--copy", f"touch {marker}", "--dry-run")
    assert text.returncode == 0 and ANNA in text.stdout and "skip" in text.stdout


def test_migrate_copy_timeout_kills_the_copy_and_keeps_the_mailbox_held(holdd, tmp_path):
    hold_mail(holdd, ANNA)
    t0 = time.monotonic()
    r = holdd.ctl("--json", "migrate", ANNA, "--copy", "sleep 30", "--copy-timeout", "1s",
                  "--log-dir", tmp_path / "logs")
    assert time.monotonic() - t0 < 15
    assert r.returncode == 1, r
    (row,) = json.loads(r.stdout)["mailboxes"]
    assert row["result"] == "failed" and "copy-timeout" in row["reason"]
    assert states(holdd, ANNA) == {ANNA: "held"}
    assert stays(lambda: not holdd.sink_new.deliveries(), 1.0)


def test_migrate_verify_keeps_a_mailbox_the_new_server_does_not_know(holdd, tmp_path):
    hold_mail(holdd, ANNA, BOB)
    holdd.sink_new.set_control({"rcpt": {BOB: "550 5.1.1 no such user"}})
    r = holdd.ctl("--json", "migrate", ANNA, BOB, "--copy", "true", "--verify",
                  "--log-dir", tmp_path / "logs")
    assert r.returncode == 1, r
    rows = {m["mailbox"]: m for m in json.loads(r.stdout)["mailboxes"]}
    assert rows[ANNA]["result"] == "migrated"
    assert rows[BOB]["result"] == "failed" and "no such user" in rows[BOB]["reason"]
    assert states(holdd, ANNA, BOB) == {ANNA: "migrated", BOB: "held"}


def test_migrate_unknown_name_is_reported_and_the_rest_goes_on(holdd, tmp_path):
    r = holdd.ctl("--json", "migrate", ANNA, "nobody@example.com", "--copy", "true",
                  "--log-dir", tmp_path / "logs")
    assert r.returncode == 1
    rows = {m["mailbox"]: m for m in json.loads(r.stdout)["mailboxes"]}
    assert rows["nobody@example.com"]["result"] == "failed"
    assert rows[ANNA]["result"] == "migrated"


def test_migrate_first_signal_lets_running_copies_finish_and_starts_no_new_one(holdd, tmp_path):
    hold_mail(holdd, ANNA, BOB, CAROL)
    started = tmp_path / "started"
    cmd = [holdd.ctl_bin, "--config", str(holdd.config_path), "--json", "migrate", ANNA, BOB, CAROL,
           "--parallel", "1", "--log-dir", str(tmp_path / "logs"),
           "--copy", f"echo {{mailbox}} >> {started}; sleep 2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: started.exists(), 10, what="the first copy to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, (out, err)
    rows = {m["mailbox"]: m for m in json.loads(out)["mailboxes"]}
    assert [m for m, row in rows.items() if row["result"] == "migrated"] == [ANNA]
    assert {rows[BOB]["result"], rows[CAROL]["result"]} == {"not_started"}
    assert started.read_text().split() == [ANNA]
    assert states(holdd, ANNA, BOB, CAROL) == {ANNA: "migrated", BOB: "held", CAROL: "held"}


def test_migrate_second_signal_kills_the_copies_and_their_mailboxes_stay_held(holdd, tmp_path):
    hold_mail(holdd, ANNA)
    started = tmp_path / "started"
    cmd = [holdd.ctl_bin, "--config", str(holdd.config_path), "--json", "migrate", ANNA,
           "--log-dir", str(tmp_path / "logs"), "--copy", f"touch {started}; sleep 60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: started.exists(), 10, what="the copy to start")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, (out, err)
    (row,) = json.loads(out)["mailboxes"]
    assert row["result"] == "failed" and "signal" in row["reason"]
    assert states(holdd, ANNA) == {ANNA: "held"}
    # No copy left running (its process group was killed).
    assert subprocess.run(["pgrep", "-f", f"touch {started}; sleep 60"]).returncode == 1


def test_migrate_without_a_terminal_prints_a_line_per_mailbox_and_a_summary(holdd, tmp_path):
    r = holdd.ctl("migrate", ANNA, BOB, "--copy", "true", "--log-dir", tmp_path / "logs")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert any(line.startswith(f"{ANNA}: migrated") for line in lines), lines
    assert any(line.startswith(f"{BOB}: migrated") for line in lines), lines
    assert "2 of 2 mailbox(es) migrated" in lines[-1]


def test_migrate_on_a_terminal_redraws_one_progress_line(holdd, tmp_path):
    hold_mail(holdd, ANNA)
    master, slave = os.openpty()
    cmd = [holdd.ctl_bin, "--config", str(holdd.config_path), "migrate", ANNA, BOB,
           "--parallel", "1", "--copy", "sleep 0.5", "--log-dir", str(tmp_path / "logs")]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(30) == 0
    text = out.decode(errors="replace")
    # One line, redrawn in place (carriage return, erase line), with the counts.
    assert "\r\x1b[Kmigrate: " in text, text
    assert "running" in text and "left" in text and "replayed" in text, text
    # No line per mailbox on a terminal; the summary at the end.
    assert f"{ANNA}: migrated" not in text, text
    assert "2 of 2 mailbox(es) migrated" in text, text


def test_migrate_killed_mid_batch_leaves_its_mailboxes_held_and_a_rerun_finishes(holdd, tmp_path):
    hold_mail(holdd, ANNA)
    started = tmp_path / "started"
    cmd = [holdd.ctl_bin, "--config", str(holdd.config_path), "migrate", ANNA, BOB, "--parallel", "2",
           "--log-dir", str(tmp_path / "logs"), "--copy", f"touch {started}; sleep 30"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until(lambda: started.exists(), 10, what="the copies to start")
    wait_until(lambda: states(holdd, ANNA, BOB) == {ANNA: "held", BOB: "held"}, 10, what="both locked")
    os.killpg(proc.pid, signal.SIGKILL)  # holdctl dies
    proc.wait(10)
    subprocess.run(["pkill", "-KILL", "-f", f"touch {started}; sleep 30"])  # and its copies with it
    assert states(holdd, ANNA, BOB) == {ANNA: "held", BOB: "held"}  # safe: held, nothing lost
    assert stays(lambda: not holdd.sink_new.deliveries() and not holdd.sink_old.deliveries(), 1.0)
    again = holdd.ctl("migrate", ANNA, BOB, "--copy", "true", "--log-dir", tmp_path / "logs2")
    assert again.returncode == 0, again
    assert states(holdd, ANNA, BOB) == {ANNA: "migrated", BOB: "migrated"}
    assert [d["rcpt"] for d in holdd.sink_new.wait_for(1)] == [ANNA]
