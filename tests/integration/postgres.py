"""A real PostgreSQL server for the integration tests of [cluster] (several holdd
nodes sharing mailbox states in PostgreSQL): Debian's own server binaries
(/usr/lib/postgresql/N/bin), a throwaway cluster per test, listening only on
127.0.0.1 on a free port and on a private unix socket directory.

    pg = Postgres(tmp_path)
    pg.start()                 # initdb (trust auth, superuser holdd), server, database holdd
    pg.conninfo                # "host=127.0.0.1 port=N dbname=holdd user=holdd connect_timeout=3"
    pg.sql("SELECT %s, 1", "it's")   # [["it's", "1"]]
    pg.stop(); pg.start_again()      # the database down, then back on the same port
    pg.cleanup()               # stops it, removes the data directory

The server refuses to run as root, so it runs as the `postgres` system user (or
`nobody`). Its data and socket directories live in a private directory under /tmp
(pytest's tmp_path is not reachable for that user); its log is postgres.log in the
work directory.
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from helpers import free_port

DATABASE = "holdd"
SUPERUSER = "holdd"
FIELD_SEP = "\x1f"  # psql output: ASCII unit separator between fields


def _bindir():
    """Debian's server binaries: version 15 (Debian 12) if present, else the newest."""
    preferred = "/usr/lib/postgresql/15/bin"
    if os.access(os.path.join(preferred, "initdb"), os.X_OK):
        return preferred
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")])
    return os.path.dirname(found[-1]) if found else None


def available():
    """(True, bindir) when a PostgreSQL server is installed, else (False, reason)."""
    b = _bindir()
    if b is None:
        return False, "no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)"
    return True, b


def _server_user():
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise AssertionError("neither a `postgres` nor a `nobody` user to run PostgreSQL as")


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = v.decode() if isinstance(v, bytes) else str(v)
    if "\0" in s:
        raise ValueError("no NUL in SQL string literals")
    return "'" + s.replace("'", "''") + "'"  # standard_conforming_strings is on


class Postgres:
    def __init__(self, workdir):
        ok, where = available()
        if not ok:
            raise AssertionError(f"PostgreSQL server not installed: {where}")
        self.bindir = where
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "postgres.log"
        # PostgreSQL refuses to run as root: as root, run it as an unprivileged user.
        self.user = _server_user() if os.geteuid() == 0 else None
        self.port = free_port()
        # A process-title tag: every process of this server (postmaster, backends,
        # checkpointer...) shows "postgres: <cluster_name>: ...", so pids() finds them.
        self.cluster_name = f"holdd-test-{uuid.uuid4().hex[:12]}"
        self.root = Path(tempfile.mkdtemp(prefix="holdd-pg-", dir="/tmp"))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        for d in (self.root, self.datadir, self.sockdir):
            d.mkdir(mode=0o700, exist_ok=True)
            if self.user is not None:
                os.chown(d, self.user.pw_uid, self.user.pw_gid)
        self.proc = None
        self.initialized = False
        self.starts = 0

    # -- helpers --

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC", HOME=str(self.root))
        return env

    def _drop(self):
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _as_user(self, cmd, **kw):
        """Runs a server program as the unprivileged user (not root); returns the
        CompletedProcess with its output, raising with that output on failure."""
        r = subprocess.run(cmd, **self._drop(),
                           cwd=self.root, env=self._env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120, **kw)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def conninfo(self):
        return (f"host=127.0.0.1 port={self.port} dbname={DATABASE} user={SUPERUSER} "
                f"connect_timeout=3")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- process control --

    def start(self, timeout=30):
        """initdb (the first time), the server, and the database holdd."""
        if not self.initialized:
            self._as_user([f"{self.bindir}/initdb", "-D", str(self.datadir), "--auth=trust",
                           "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync",
                           "--no-instructions"])
            self.initialized = True
            self._launch(timeout, may_change_port=True)
            self.sql(f"CREATE DATABASE {DATABASE}", dbname="postgres")
        else:
            self._launch(timeout, may_change_port=False)

    def start_again(self, timeout=30):
        """The same data directory on the same port, after stop()."""
        assert self.initialized, "start() first"
        self._launch(timeout, may_change_port=False)

    def _launch(self, timeout, may_change_port):
        assert not self.running(), "postgres already running"
        for attempt in range(4):
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(f"\n===== postgres start #{self.starts} on port {self.port} =====\n"
                          .encode())
                log.flush()
                log_start = log.tell()
                cmd = [f"{self.bindir}/postgres", "-D", str(self.datadir),
                       "-c", f"port={self.port}",
                       "-c", "listen_addresses=127.0.0.1",
                       "-c", f"unix_socket_directories={self.sockdir}",
                       "-c", f"cluster_name={self.cluster_name}",
                       "-c", "fsync=off", "-c", "synchronous_commit=off",
                       "-c", "full_page_writes=off",
                       "-c", "shared_buffers=16MB", "-c", "max_connections=50",
                       "-c", "dynamic_shared_memory_type=mmap",
                       "-c", "logging_collector=off", "-c", "log_destination=stderr",
                       "-c", "log_min_messages=warning", "-c", "log_connections=off"]
                self.proc = subprocess.Popen(
                    cmd, **self._drop(),
                    cwd=self.root, env=self._env(), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, start_new_session=True)
            if self._wait_ready(timeout, log_start):
                return
            # The postmaster exited before it was ready.
            text = self.log_path.read_bytes()[log_start:].decode(errors="replace")
            self.proc = None
            if may_change_port and "already in use" in text and attempt < 3:
                # free_port() only found a port that was free a moment ago.
                self.port = free_port()
                continue
            raise AssertionError(f"postgres exited before accepting connections; "
                                 f"log tail ({self.log_path}):\n{self.log_tail()}")

    def _wait_ready(self, timeout, log_start):
        """True once the server accepts connections, False if it exited first.
        Asked over the private socket directory: on 127.0.0.1:port another
        test's server could answer."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                return False
            r = subprocess.run([f"{self.bindir}/pg_isready", "-q", "-h", str(self.sockdir),
                                "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
                                "-t", "2"],
                               env=self._env(), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30)
            if r.returncode == 0 and self.proc.poll() is None:
                return True
            if time.monotonic() > deadline:
                self._terminate()
                raise AssertionError(f"postgres did not accept connections within "
                                     f"{timeout}s on port {self.port}; log tail "
                                     f"({self.log_path}):\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT: backends are ended, open transactions rolled back);
        waits until every process of the server is gone."""
        if self.proc is None:
            return
        self._terminate(timeout)

    def _terminate(self, timeout=30):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGQUIT)  # immediate shutdown
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        # The postmaster waits for its children; should one remain anyway (after
        # SIGKILL), end it too.
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def pids(self):
        """Every live process of this server: the postmaster (its command line names
        the data directory) and its children (their title names cluster_name)."""
        out = []
        data = str(self.datadir).encode()
        tag = self.cluster_name.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if state == b"Z":
                continue  # exited, only not reaped yet
            if tag in cmdline or data in cmdline.split(b"\0"):
                out.append(int(entry))
        return out

    def cleanup(self):
        """Stops the server if it runs and removes its data directory. Never leaves a
        process behind."""
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- SQL --

    def sql(self, query, *params, dbname=DATABASE):
        """Runs `query` (one or more statements) with psql as the superuser holdd and
        returns the rows of its results as lists of strings (NULL: ""). Each %s in the
        query is replaced by the next parameter as an SQL literal (str, bytes as UTF-8,
        int, float, bool, None); without parameters the query is taken as it is."""
        if params:
            parts = query.split("%s")
            assert len(parts) == len(params) + 1, (
                f"{len(parts) - 1} placeholders for {len(params)} parameters in {query!r}")
            query = parts[0] + "".join(_literal(p) + rest for p, rest in zip(params, parts[1:]))
        r = subprocess.run([f"{self.bindir}/psql", "-X", "-q", "-A", "-t", "-F", FIELD_SEP, "-0",
                            "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir),
                            "-p", str(self.port), "-U", SUPERUSER, "-d", dbname, "-f", "-"],
                           input=query.encode(), capture_output=True, env=self._env(),
                           timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"psql exited {r.returncode} for {query!r}:\n"
                                 f"{r.stderr.decode(errors='replace')}")
        # Unaligned and tuples only: each row ends in a NUL, its fields separated by
        # FIELD_SEP, so values may hold "|" or newlines.
        return [row.split(FIELD_SEP) for row in r.stdout.decode().split("\0")[:-1]]
