"""holdctl exit codes (SPEC): 0 ok, 1 the daemon refused (message on stderr says
why), 2 usage error, 3 daemon unreachable; --json prints one JSON document."""
import json

import pytest


def test_ok_is_exit_0_and_json_is_one_document(holdd):
    r = holdd.ctl("--json", "status")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert set(status["mailboxes"]) == {"old", "held", "migrated"}
    assert status["mailboxes"]["old"] == 4


def test_unknown_mailbox_is_exit_1_with_the_reason_on_stderr(holdd):
    r = holdd.ctl("lock", "nobody@example.com")
    assert r.returncode == 1
    assert "nobody@example.com" in r.stderr and "unknown" in r.stderr.lower(), r.stderr
    r = holdd.ctl("--json", "show", "nobody@example.com")
    assert r.returncode == 1
    assert "error" in json.loads(r.stdout)
    assert "nobody@example.com" in r.stderr


def test_batch_with_an_unknown_mailbox_changes_nothing_and_names_every_unknown(holdd):
    r = holdd.ctl("lock", "anna@example.com", "ghost1@example.com", "ghost2@example.com")
    assert r.returncode == 1
    assert "ghost1@example.com" in r.stderr and "ghost2@example.com" in r.stderr, r.stderr
    assert holdd.ctl_json("show", "anna@example.com")["state"] == "old"


@pytest.mark.parametrize("args", [["frobnicate"], [], ["lock"], ["queue"],
                                  ["status", "--no-such-option"], ["list", "--state", "sleepy"]],
                         ids=["unknown-command", "no-command", "lock-without-mailbox",
                              "queue-without-mailbox", "unknown-option", "bad-state"])
def test_usage_error_is_exit_2(holdd, args):
    r = holdd.ctl(*args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "a usage error says what is wrong"


def test_daemon_not_running_is_exit_3(holdd):
    holdd.stop()
    r = holdd.ctl("status")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip()
    r = holdd.ctl("--socket", holdd.sockdir / "nonexistent.sock", "status", config=False)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)


def test_socket_option_reaches_the_daemon_without_config(holdd):
    r = holdd.ctl("--socket", holdd.socket, "--json", "status", config=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mailboxes"]["old"] == 4
