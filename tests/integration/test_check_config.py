"""`holdd --check-config`: exit 0 on a good configuration; on a bad one exit 1 and
print each problem with file, key and reason."""
import subprocess

import pytest

from helpers import merge, to_toml


def check(holdd, overrides):
    path = holdd.dir / "check.toml"
    path.write_text(to_toml(merge(holdd.config, overrides)))
    r = subprocess.run([holdd.bin, "--check-config", "--config", str(path)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return path, r, r.stdout + r.stderr


@pytest.mark.holdd(start=False, sinks_up=False)
def test_good_config_exits_0(holdd):
    _, r, out = check(holdd, {})
    assert r.returncode == 0, out


@pytest.mark.holdd(start=False, sinks_up=False)
def test_bad_size_names_file_key_and_reason(holdd):
    path, r, out = check(holdd, {"server": {"max_message_size": "fifty"}})
    assert r.returncode == 1, out
    assert str(path) in out, out
    assert "max_message_size" in out and "fifty" in out, out


@pytest.mark.holdd(start=False, sinks_up=False)
def test_every_problem_is_reported_not_only_the_first(holdd):
    path, r, out = check(holdd, {"server": {"max_message_size": "fifty"},
                                 "delivery": {"retry_min": "soon"},
                                 "directory": {"recipients": "everyone"},
                                 "spool": {"no_such_key": 1}})
    assert r.returncode == 1, out
    for key in ("max_message_size", "retry_min", "recipients", "no_such_key"):
        assert key in out, (key, out)


@pytest.mark.holdd(start=False, sinks_up=False)
@pytest.mark.parametrize("overrides,key", [
    ({"server": {"max_recipients": "many"}}, "max_recipients"),
    ({"upstream": {"new": {"protocol": "uucp"}}}, "protocol"),
    ({"upstream": {"old": {"tls": "maybe"}}}, "tls"),
    ({"control": {"metrics_listen": "not an endpoint"}}, "metrics_listen"),
    ({"server": {"command_timeout": "5 fortnights"}}, "command_timeout"),
], ids=["wrong-type", "bad-protocol", "bad-tls", "bad-endpoint", "bad-duration"])
def test_bad_value_exits_1_naming_the_key(holdd, overrides, key):
    _, r, out = check(holdd, overrides)
    assert r.returncode == 1, out
    assert key in out, out


@pytest.mark.holdd(start=False, sinks_up=False)
def test_toml_syntax_error_exits_1_naming_the_file(holdd):
    path = holdd.dir / "broken.toml"
    path.write_text("[server\nlisten = \n")
    r = subprocess.run([holdd.bin, "--check-config", "--config", str(path)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert str(path) in r.stdout + r.stderr


@pytest.mark.holdd(start=False, sinks_up=False)
def test_daemon_refuses_to_start_on_a_bad_config(holdd):
    path, _, _ = check(holdd, {"server": {"max_message_size": "fifty"}})
    r = subprocess.run([holdd.bin, "--config", str(path)], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "max_message_size" in r.stdout + r.stderr
