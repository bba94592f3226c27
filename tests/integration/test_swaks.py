"""A client nobody on this project wrote, swaks, delivers a message."""
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("swaks") is None,
    reason="swaks tests NOT RUN: swaks not found in PATH (Debian package swaks; "
           "scripts/install-deps.sh installs it)")


@pytest.mark.parametrize("extra", [[], ["--pipeline"]], ids=["plain", "pipelined"])
def test_swaks_message_is_accepted_and_queued(holdd, extra):
    holdd.ctl_json("lock", "anna@example.com")
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{holdd.smtp_port}",
                        "--to", "anna@example.com", "--from", "swaks@sender.test",
                        "--helo", "client.test", "--header", "Subject: from swaks",
                        "--body", "Hello from swaks.", "--timeout", "20", *extra],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as" in r.stdout, r.stdout
    queued = holdd.queue("anna@example.com")
    assert [m["sender"] for m in queued] == ["swaks@sender.test"]
