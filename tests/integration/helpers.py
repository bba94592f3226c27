"""Helpers for the holdd integration tests: the daemon under test, recording upstream
sinks, a raw SMTP dialog, messages, and polling with deadlines.

Only loopback addresses are used. Everything started here is stopped by the fixtures
in conftest.py, also when a test fails.
"""
import base64
import copy
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
DOMAIN = "example.com"
MAILBOXES = ["anna@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]
ALIASES = {"team@example.com": ["anna@example.com", "bob@example.com"]}


# --- polling -----------------------------------------------------------------------

class Timeout(AssertionError):
    pass


def wait_until(cond, timeout=20.0, interval=0.05, what=None):
    """Polls cond() until it returns something truthy, and returns that. Raises
    Timeout (an AssertionError) naming `what` and the last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout}s waiting for "
                          f"{what or getattr(cond, '__name__', 'condition')}; last value: {last!r}")
        time.sleep(interval)


def stays(cond, duration=2.0, interval=0.1):
    """True if cond() holds during the whole `duration` (for "nothing happens" checks;
    used only where the thing that must not happen would happen within it)."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not cond():
            return False
        time.sleep(interval)
    return bool(cond())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- messages ----------------------------------------------------------------------

def make_message(n=0, sender="sender@sender.test", to="anna@example.com", subject=None,
                 body=None, extra_headers=(), message_id=None):
    """A message with CRLF line ends ending in CRLF, with its own Message-ID (so holdd
    adds none) as the first header. Returns bytes."""
    message_id = message_id or f"<{n}.{uuid.uuid4().hex}@sender.test>"
    lines = [f"Message-ID: {message_id}", f"From: <{sender}>", f"To: <{to}>",
             f"Subject: {subject or f'test message {n}'}",
             "Date: Mon, 23 Nov 2026 16:49:24 +0000", *extra_headers, ""]
    if body is None:
        body = f"This is test message number {n}.\r\n.Leading dot line\r\n\r\nBye.\r\n"
    return ("\r\n".join(lines) + "\r\n").encode() + (body.encode() if isinstance(body, str) else body)


def dot_stuff(msg):
    """RFC 5321 4.5.2 transparency, for raw DATA: a line that begins with "." gets
    another one. `msg` must end in CRLF."""
    return re.sub(rb"(^|\r\n)\.", rb"\1..", msg)


def message_id_of(data):
    for line in data.split(b"\r\n"):
        if line == b"":
            break
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return None


def split_prepended(received, original):
    """Asserts that `received` is `original` with only header lines prepended and
    returns those prepended lines (list of bytes, continuation lines joined)."""
    assert received.endswith(original), (
        "upstream copy is not the original with headers prepended:\n"
        f"original:\n{original!r}\nreceived:\n{received!r}")
    prefix = received[: len(received) - len(original)]
    assert prefix == b"" or prefix.endswith(b"\r\n"), prefix
    headers = []
    for line in prefix.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1] += b"\r\n" + line
        else:
            name, colon, _ = line.partition(b":")
            assert colon and name and b" " not in name, f"not a header line: {line!r}"
            headers.append(line)
    return headers


def send(port, sender, rcpts, msg, timeout=30):
    """Sends one message with smtplib. Returns (code, text) of the reply to the end of
    DATA. Raises smtplib exceptions for a refused MAIL/RCPT."""
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as client:
        client.ehlo("client.test")
        code, text = client.mail(sender)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = client.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = client.data(msg)
        return code, text.decode(errors="replace")


def send_ok(port, sender, rcpts, msg):
    code, text = send(port, sender, rcpts, msg)
    assert code == 250, (code, text)
    return text


class RawSmtp:
    """A byte-level SMTP dialog for what smtplib will not send (pipelining in one
    write, smuggling attempts)."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def read_reply(self):
        """One (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def command(self, line):
        self.send(line.encode() + b"\r\n")
        return self.read_reply()

    def remaining_replies(self, timeout=3.0):
        """Every reply that arrives until the server closes or `timeout` s of silence."""
        self.sock.settimeout(timeout)
        replies = []
        try:
            while True:
                replies.append(self.read_reply())
        except (EOFError, socket.timeout, ConnectionError):
            pass
        return replies


# --- upstream sinks ----------------------------------------------------------------

class Sink:
    """A recording upstream (upstream_sink.py) in its own process, on a fixed port."""

    def __init__(self, name, workdir, lmtp=False):
        self.name = name
        self.lmtp = lmtp
        self.tls = None  # (certificate, key) paths: offer STARTTLS; set before start()
        self.record_commands = False  # log every command line (commands()); set before start()
        self.port = free_port()
        self.dir = Path(workdir) / f"sink-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "received.jsonl"
        self.commands_log = self.dir / "commands.jsonl"
        self.control_file = self.dir / "control.json"
        self.stderr = self.dir / "stderr.log"
        self.proc = None
        self.set_control({})

    def start(self, timeout=15):
        assert self.proc is None, f"sink {self.name} already running"
        ready = self.dir / "ready"
        if ready.exists():
            ready.unlink()
        cmd = [SYSTEM_PYTHON, str(HERE / "upstream_sink.py"), "--port", str(self.port),
               "--log", str(self.log), "--control", str(self.control_file),
               "--ready", str(ready), "--name", f"{self.name}.upstream.test"]
        if self.record_commands:
            cmd += ["--commands", str(self.commands_log)]
        if self.lmtp:
            cmd.append("--lmtp")
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"sink {self.name} exited {self.proc.returncode}: "
                                     f"{self.stderr.read_text(errors='replace')}")
            return ready.exists()

        wait_until(up, timeout, what=f"sink {self.name} to listen on {self.port}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def set_control(self, control):
        tmp = self.control_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(control))
        os.replace(tmp, self.control_file)

    def entries(self):
        """Every recorded transaction, in order (see upstream_sink.py)."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            e["data"] = base64.b64decode(e.pop("data_b64"))
            out.append(e)
        return out

    def commands(self):
        """Every command line received, in order, when record_commands was set:
        dicts with verb and tls (whether the session was inside TLS when it arrived)."""
        if not self.commands_log.exists():
            return []
        out = []
        for line in self.commands_log.read_bytes().split(b"\n"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # blank, or a line being written right now
        return out

    def deliveries(self, rcpt=None):
        """Accepted (transaction, recipient) pairs in arrival order, as dicts with
        mail_from, rcpt, data, message_id, options."""
        out = []
        for e in self.entries():
            for r in e["rcpts"]:
                if r["reply"].startswith("2") and (rcpt is None or r["rcpt"] == rcpt):
                    out.append({"mail_from": e["mail_from"], "rcpt": r["rcpt"],
                                "data": e["data"], "message_id": message_id_of(e["data"]),
                                "mail_options": e["mail_options"], "options": r["options"]})
        return out

    def refusals(self):
        return [(e, r) for e in self.entries() for r in e["rcpts"]
                if not r["reply"].startswith("2")]

    def wait_for(self, count, rcpt=None, timeout=30):
        """Waits until at least `count` deliveries (to `rcpt`) arrived; returns them."""
        return wait_until(lambda: (lambda d: d if len(d) >= count else None)(self.deliveries(rcpt)),
                          timeout, what=f"{count} deliveries at sink {self.name}"
                          + (f" for {rcpt}" if rcpt else ""))


# --- the daemon --------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(config):
    """{"server": {...}, "upstream": {"old": {...}}} -> TOML text (tables only)."""
    out = []

    def table(name, d):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in d.items() if isinstance(v, dict)}
        if scalars or not tables:
            out.append(f"[{name}]")
            out.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
            out.append("")
        for k, v in tables.items():
            table(f"{name}.{k}", v)

    for name, d in config.items():
        table(name, d)
    return "\n".join(out)


def merge(base, overrides):
    """Deep merge; a value of None deletes the key."""
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def binary(env_name, default_name):
    path = os.environ.get(env_name)
    if path:
        return path
    source = Path(os.environ.get("HOLDD_SOURCE_DIR", HERE.parent.parent))
    return str(source / "build" / default_name)


class Holdd:
    """The real holdd binary on a per-test configuration (STYLE.md section 5)."""

    def __init__(self, workdir, sink_old, sink_new, overrides=None):
        self.dir = Path(workdir)
        self.bin = binary("HOLDD_BIN", "holdd")
        self.ctl_bin = binary("HOLDCTL_BIN", "holdctl")
        self.sink_old = sink_old
        self.sink_new = sink_new
        self.smtp_port = free_port()
        self.metrics_port = free_port()
        # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
        self.sockdir = Path(tempfile.mkdtemp(prefix="holdd-", dir="/tmp"))
        self.socket = self.sockdir / "control.sock"
        self.spool = self.dir / "spool"
        self.spool.mkdir(exist_ok=True)
        self.log_path = self.dir / "holdd.log"
        self.config_path = self.dir / "holdd.toml"
        self.mailboxes_path = self.dir / "mailboxes.txt"
        self.aliases_path = self.dir / "aliases.txt"
        self.mailboxes_path.write_text("# test mailboxes\n" + "\n".join(MAILBOXES) + "\n")
        self.aliases_path.write_text("".join(f"{a}: {', '.join(t)}\n" for a, t in ALIASES.items()))
        self.config = merge(self.default_config(), overrides or {})
        self.write_config()
        self.proc = None
        self.starts = 0
        self.port_retries = 0

    def default_config(self):
        def upstream(sink):
            return {"host": "127.0.0.1", "port": sink.port,
                    "protocol": "lmtp" if sink.lmtp else "smtp", "tls": "none"}

        return {
            "server": {"listen": [f"127.0.0.1:{self.smtp_port}"], "hostname": "holdd.test",
                       "max_message_size": "10MiB", "max_recipients": 100,
                       "command_timeout": "60s", "data_timeout": "60s"},
            "spool": {"path": str(self.spool), "min_free_disk": "1MiB"},
            "control": {"socket": str(self.socket),
                        "metrics_listen": f"127.0.0.1:{self.metrics_port}"},
            "directory": {"domains": [DOMAIN], "mailboxes": str(self.mailboxes_path),
                          "aliases": str(self.aliases_path), "recipients": "listed",
                          "initial_state": "old"},
            "upstream": {"old": upstream(self.sink_old), "new": upstream(self.sink_new)},
            "delivery": {"concurrency": 4, "retry_min": "1s", "retry_max": "2s"},
            "auth": {"spf": False, "dkim": False, "dmarc": False},
        }

    def write_config(self):
        self.config_path.write_text(to_toml(self.config))

    # -- process control --

    def start(self, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, "holdd already running"
        assert os.access(self.bin, os.X_OK), f"no holdd binary at {self.bin} (set HOLDD_BIN)"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== holdd start #{self.starts} =====\n".encode())
            log.flush()
            log_start = log.tell()
            self.proc = subprocess.Popen([self.bin, "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                if self._lost_port_race(log_start):
                    return self.start(timeout)
                raise AssertionError(f"holdd exited with {self.proc.returncode} before its "
                                     f"banner; its output:\n{self.log_text()}")
            # Ready only once this holdd says so: a banner alone may come from another
            # test's server that got the same free port while this one was starting
            # (this holdd would then fail to bind and exit, which the check above shows).
            if b"holdd ready" in self.log_path.read_bytes()[log_start:]:
                banner = self._banner()
                if banner is not None:
                    assert banner.startswith("220"), f"unexpected banner {banner!r}"
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"no 220 banner from holdd on port {self.smtp_port} "
                                     f"within {timeout}s; its output:\n{self.log_text()}")
            time.sleep(0.05)

    def _lost_port_race(self, log_start):
        """free_port() only finds a port that was free a moment ago: another test's
        server may have bound it since. When holdd could not listen on a port this
        helper chose itself (the first start, ports from the default config), choose
        new ones and say so; a test's own listen settings are left alone."""
        text = self.log_path.read_bytes()[log_start:].decode(errors="replace")
        if "Address already in use" not in text or self.port_retries >= 3:
            return False
        listen = self.config.get("server", {}).get("listen")
        metrics = self.config.get("control", {}).get("metrics_listen")
        if listen != [f"127.0.0.1:{self.smtp_port}"] or metrics not in (
                None, "", f"127.0.0.1:{self.metrics_port}"):
            return False
        self.port_retries += 1
        self.smtp_port, self.metrics_port = free_port(), free_port()
        self.config["server"]["listen"] = [f"127.0.0.1:{self.smtp_port}"]
        if metrics:
            self.config["control"]["metrics_listen"] = f"127.0.0.1:{self.metrics_port}"
        self.write_config()
        with open(self.log_path, "ab") as log:
            log.write(b"(port taken by another process meanwhile: retrying with new ports)\n")
        return True

    def _banner(self):
        try:
            with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=5) as s:
                s.settimeout(5)
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return None
                    data += chunk
                try:
                    # Wait for the 221 and the server's close, so the probe does not
                    # count against connection limits once start() returns.
                    s.sendall(b"QUIT\r\n")
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                return data.split(b"\r\n")[0].decode(errors="replace")
        except OSError:
            return None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; asserts that holdd exits 0 within `timeout` s."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise AssertionError(f"holdd did not exit within {timeout}s of SIGTERM")
        assert proc.returncode == 0, (
            f"holdd exited with {proc.returncode} after SIGTERM; its output:\n{self.log_text()}")
        return proc.returncode

    def kill9(self):
        assert self.running, "holdd is not running"
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def sanitized(self):
        """True when this holdd runs under AddressSanitizer (the build-asan tree):
        its quarantine keeps up to 256 MB of freed memory mapped, so RSS bounds
        must allow for it (not a leak: LeakSanitizer checks that at exit)."""
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return "libasan" in f.read()

    def sanitizer_reports(self):
        text = self.log_text()
        markers = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
        return [line for line in text.splitlines() if any(m in line for m in markers)]

    def cleanup(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        finally:
            self.proc = None
            shutil.rmtree(self.sockdir, ignore_errors=True)

    # -- holdctl --

    def ctl(self, *args, config=True, timeout=60, input=None):
        cmd = [self.ctl_bin]
        if config:
            cmd += ["--config", str(self.config_path)]
        cmd += [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def ctl_json(self, *args, timeout=60):
        r = self.ctl("--json", *args, timeout=timeout)
        assert r.returncode == 0, (
            f"holdctl --json {' '.join(map(str, args))} exited {r.returncode}\n"
            f"stdout: {r.stdout}\nstderr: {r.stderr}")
        try:
            return json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"holdctl --json {' '.join(map(str, args))} printed "
                                 f"invalid JSON ({e}): {r.stdout!r}")

    def queue(self, mailbox):
        return self.ctl_json("queue", mailbox)["messages"]

    def status(self):
        return self.ctl_json("status")

    def wait_queued(self, mailbox, count, timeout=20):
        """Waits until `mailbox` has exactly `count` queued messages; returns them."""
        found = []

        def check():
            found[:] = [self.queue(mailbox)]
            return len(found[0]) == count

        wait_until(check, timeout, what=f"{count} queued messages for {mailbox}")
        return found[0]

    # -- SMTP --

    def send(self, sender, rcpts, msg):
        return send_ok(self.smtp_port, sender, rcpts, msg)
