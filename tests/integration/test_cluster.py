"""Several holdd nodes sharing mailbox states in a real PostgreSQL (SPEC "Several
nodes", issue 17): two nodes on loopback, each with its own spool, the same old and
new sinks, and a PostgreSQL server of the test's own (postgres fixture).

  - a state changed on one node is applied by the other within a second;
  - `lock` on node A holds mail that arrives at node B;
  - `release` with held mail on both nodes delivers every held message, each node's
    in its arrival order, before any newer message accepted on either node;
  - kill -9 of a node in the middle of a release: the mailbox stays `releasing`
    (status names the node), newer mail waits everywhere, and once the node is back
    it replays the rest and the mailbox becomes `migrated`;
  - PostgreSQL stopped during intake and relaying: mail is accepted and relayed with
    the last known states, state changes are refused with a clear message, nothing
    is lost, and the nodes catch up when it is back;
  - `node list`, and `node forget` of a node that will not come back.
"""
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import Holdd, Sink, free_port, send_ok, stays, wait_until

MAILBOX = "anna@example.com"


def message(tag, n):
    return (f"Message-ID: <{tag}.{n}@sender.test>\r\nSubject: {tag} {n}\r\nX-Tag: {tag}-{n}\r\n\r\n"
            f"body {tag} {n}\r\n").encode()


def tags(sink, rcpt=MAILBOX):
    out = []
    for d in sink.deliveries(rcpt):
        for line in d["data"].split(b"\r\n"):
            if line.startswith(b"X-Tag: "):
                out.append(line[7:].decode())
                break
            if line == b"":
                break
    return out


class Link:
    """A TCP relay between one node and PostgreSQL, so that the test can cut that
    node off (a network partition) while the others keep their connections."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.up = True
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Drops every connection and refuses new ones."""
        self.up = False
        with self.lock:
            for pair in self.pairs:
                for s in pair:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self.pairs.clear()

    def heal(self):
        self.up = True

    def close(self):
        self.cut()
        self.listener.close()


class Cluster:
    def __init__(self, tmp_path, postgres, names, config=None):
        self.postgres = postgres
        self.sink_old = Sink("old", tmp_path)
        self.sink_new = Sink("new", tmp_path)
        self.nodes = {}
        for name in names:
            workdir = tmp_path / name
            workdir.mkdir()
            overrides = {"cluster": {"postgresql": postgres.conninfo, "node": name}}
            for key, value in (config or {}).items():
                overrides[key] = value
            self.nodes[name] = Holdd(workdir, self.sink_old, self.sink_new, overrides=overrides)

    def __getitem__(self, name):
        return self.nodes[name]

    def start(self):
        self.sink_old.start()
        self.sink_new.start()
        for node in self.nodes.values():
            node.start()

    def stop(self):
        for node in self.nodes.values():
            if node.running:
                node.stop()
        reports = [r for node in self.nodes.values() for r in node.sanitizer_reports()]
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)

    def cleanup(self):
        for node in self.nodes.values():
            node.cleanup()
        self.sink_old.stop()
        self.sink_new.stop()


@pytest.fixture
def cluster(request, tmp_path, postgres):
    c = Cluster(tmp_path, postgres, ["mx1", "mx2"])
    request.node._holdd = c["mx1"]
    try:
        c.start()
        yield c
        c.stop()
    finally:
        c.cleanup()


def state_on(node, mailbox=MAILBOX):
    return node.ctl_json("show", mailbox)["state"]


def alive_for(node, name):
    """Whether `node list` on `node` shows node `name` alive."""
    return [n for n in node.ctl_json("node", "list")["nodes"] if n["name"] == name][0]["alive"]


def test_a_state_changed_on_one_node_is_applied_by_the_other_within_a_second(cluster):
    a, b = cluster["mx1"], cluster["mx2"]
    nodes = a.ctl_json("node", "list")["nodes"]
    assert [n["name"] for n in nodes] == ["mx1", "mx2"]
    assert all(n["alive"] for n in nodes)

    started = time.monotonic()
    a.ctl_json("lock", MAILBOX)
    wait_until(lambda: state_on(b) == "held", 1.5, interval=0.05, what="mx2 applies the lock")
    print(f"lock on mx1 applied on mx2 after {time.monotonic() - started:.2f}s")
    # The change is in PostgreSQL, with who made it.
    rows = cluster.postgres.sql("SELECT state FROM holdd_mailboxes WHERE mailbox = %s", MAILBOX)
    assert rows == [["held"]]
    show = b.ctl_json("show", MAILBOX)
    assert show["cluster"]["history"][-1]["to"] == "held"
    assert show["cluster"]["history"][-1]["node"] == "mx1"

    # Each node exports its view of the shared states, with its node label; the
    # dashboard's cluster panels query only series that exist.
    for node, name in ((a, "mx1"), (b, "mx2")):
        with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        assert f'holdd_cluster_database_up{{node="{name}"}} 1' in text
        assert f'holdd_cluster_mailboxes{{node="{name}",state="held"}} 1' in text
        samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("holdd_")}
    dashboard = json.loads((Path(os.environ.get("HOLDD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
                            / "conf/grafana-holdd.json").read_text())
    used = set(re.findall(r"\bholdd_cluster_[a-z_]+", " ".join(
        t["expr"] for p in dashboard["panels"] for t in p["targets"])))
    assert used and not used - samples, sorted(used - samples)

    # Mail arriving at the other node is held there.
    send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("held", 1))
    b.wait_queued(MAILBOX, 1)
    assert stays(lambda: not cluster.sink_old.deliveries(MAILBOX) and not cluster.sink_new.deliveries(MAILBOX), 1.5)

    b.ctl_json("revert", MAILBOX)
    wait_until(lambda: state_on(a) == "old", 1.5, interval=0.05, what="mx1 applies the revert")
    wait_until(lambda: tags(cluster.sink_old) == ["held-1"], 10, what="the held message at the old server")
    assert cluster.sink_new.deliveries(MAILBOX) == []


def test_release_delivers_every_nodes_backlog_before_any_newer_message(cluster):
    a, b = cluster["mx1"], cluster["mx2"]
    a.ctl_json("lock", MAILBOX)
    wait_until(lambda: state_on(b) == "held", 2, what="mx2 holds")
    for n in range(20):
        send_ok(a.smtp_port, "s@sender.test", [MAILBOX], message("a-backlog", n))
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-backlog", n))
    a.wait_queued(MAILBOX, 20)
    b.wait_queued(MAILBOX, 20)
    # The new server is slow: the backlog takes a few seconds to replay, and newer
    # mail arrives on both nodes meanwhile.
    cluster.sink_new.set_control({"rcpt_delay": 0.05})

    result = a.ctl_json("release", MAILBOX)
    assert result["state"] == "releasing"
    for n in range(5):
        send_ok(a.smtp_port, "s@sender.test", [MAILBOX], message("a-new", n))
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-new", n))
    assert state_on(b) in ("releasing", "migrated")

    wait_until(lambda: len(tags(cluster.sink_new)) >= 50, 60, what="all 50 messages at the new server")
    got = tags(cluster.sink_new)
    assert sorted(set(got)) == sorted(got), f"duplicates: {got}"
    backlog = [t for t in got if "backlog" in t]
    newer = [t for t in got if "new" in t]
    assert len(backlog) == 40 and len(newer) == 10
    last_backlog = max(got.index(t) for t in backlog)
    first_newer = min(got.index(t) for t in newer)
    assert last_backlog < first_newer, f"a newer message came before the backlog was done: {got}"
    for node in ("a", "b"):
        for kind in ("backlog", "new"):
            mine = [t for t in got if t.startswith(f"{node}-{kind}-")]
            assert mine == sorted(mine, key=lambda t: int(t.rsplit("-", 1)[1])), f"{node}'s order: {mine}"
    wait_until(lambda: state_on(a) == "migrated" and state_on(b) == "migrated", 5, what="migrated everywhere")
    assert cluster.sink_old.deliveries(MAILBOX) == []


def test_kill9_of_a_node_mid_release_keeps_the_mailbox_releasing_until_it_is_back(cluster):
    a, b = cluster["mx1"], cluster["mx2"]
    a.ctl_json("lock", MAILBOX)
    wait_until(lambda: state_on(b) == "held", 2, what="mx2 holds")
    for n in range(60):
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-backlog", n))
    b.wait_queued(MAILBOX, 60)
    cluster.sink_new.set_control({"rcpt_delay": 0.1})
    a.ctl_json("release", MAILBOX)
    wait_until(lambda: len(tags(cluster.sink_new)) >= 5, 20, what="mx2's replay under way")
    b.kill9()
    send_ok(a.smtp_port, "s@sender.test", [MAILBOX], message("a-new", 0))

    # mx2 is gone: the mailbox stays releasing, status names mx2, and the newer
    # message on mx1 waits.
    wait_until(lambda: not alive_for(a, "mx2"), 15, what="mx2 no longer alive")
    assert state_on(a) == "releasing"
    status = a.ctl_json("status")
    assert status["mailboxes"]["releasing"] == 1
    assert status["cluster"]["releasing"] == [{"mailbox": MAILBOX, "waiting_for": ["mx2"]}]
    assert "a-new-0" not in tags(cluster.sink_new)
    listed = a.ctl_json("list", "--state", "releasing")["mailboxes"]
    assert [m["mailbox"] for m in listed] == [MAILBOX]

    cluster.sink_new.set_control({})
    b.start()
    wait_until(lambda: "a-new-0" in tags(cluster.sink_new), 30, what="the newer message after mx2's backlog")
    got = tags(cluster.sink_new)
    first = []
    for t in got:
        if t not in first:
            first.append(t)
    assert first == [f"b-backlog-{n}" for n in range(60)] + ["a-new-0"], got
    # At-least-once: only the delivery in flight at the kill may come twice.
    assert len(got) - len(first) <= 1, got
    wait_until(lambda: state_on(a) == "migrated" and state_on(b) == "migrated", 5, what="migrated everywhere")


def test_postgresql_down_intake_and_relaying_go_on_state_changes_refused(cluster):
    a, b = cluster["mx1"], cluster["mx2"]
    a.ctl_json("lock", "bob@example.com")
    wait_until(lambda: state_on(b, "bob@example.com") == "held", 2, what="mx2 holds bob")
    # anna is listed, so both nodes know her state (old) before any mail.
    assert state_on(a) == "old" and state_on(b) == "old"

    cluster.postgres.stop()
    for n in range(5):
        send_ok(a.smtp_port, "s@sender.test", [MAILBOX], message("a-down", n))
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-down", n))
        send_ok(b.smtp_port, "s@sender.test", ["bob@example.com"], message("bob-down", n))
    # anna is old: relayed to the old server by both nodes while the database is away.
    wait_until(lambda: len(tags(cluster.sink_old)) == 10, 15, what="anna's mail at the old server")
    b.wait_queued("bob@example.com", 5)

    r = a.ctl("lock", MAILBOX)
    assert r.returncode == 1
    assert "PostgreSQL unreachable" in r.stderr and "refused" in r.stderr, r.stderr
    # mx2 notices on its next look at the connection (a tenth of a second).
    wait_until(lambda: b.ctl_json("status")["cluster"]["database"] == "unreachable", 15,
               what="mx2 reports the database unreachable")

    cluster.postgres.start_again()
    # Both nodes reconnect (at most a second apart) and state changes work again.
    wait_until(lambda: a.ctl_json("status")["cluster"]["database"] == "connected"
               and b.ctl_json("status")["cluster"]["database"] == "connected", 15, what="both reconnect")
    a.ctl_json("release", "bob@example.com")
    wait_until(lambda: len(tags(cluster.sink_new, "bob@example.com")) == 5, 20, what="bob's held mail released")
    assert tags(cluster.sink_new, "bob@example.com") == [f"bob-down-{n}" for n in range(5)]
    assert sorted(tags(cluster.sink_old)) == sorted([f"a-down-{n}" for n in range(5)] +
                                                    [f"b-down-{n}" for n in range(5)])


def test_node_forget_ends_a_release_that_waited_for_a_node_that_will_not_come_back(cluster):
    a, b = cluster["mx1"], cluster["mx2"]
    a.ctl_json("lock", MAILBOX)
    wait_until(lambda: state_on(b) == "held", 2, what="mx2 holds")
    send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-backlog", 0))
    b.wait_queued(MAILBOX, 1)
    b.stop()

    r = a.ctl("node", "forget", "mx2")
    assert r.returncode == 1 and "seen" in r.stderr, r.stderr  # still counted as alive for a few seconds
    wait_until(lambda: not alive_for(a, "mx2"), 15, what="mx2 no longer alive")
    a.ctl_json("release", MAILBOX)  # returns: mx2 is not alive
    assert state_on(a) == "releasing"
    assert a.ctl_json("show", MAILBOX)["cluster"]["waiting_for"] == ["mx2"]
    send_ok(a.smtp_port, "s@sender.test", [MAILBOX], message("a-new", 0))
    assert stays(lambda: "a-new-0" not in tags(cluster.sink_new), 1.5)

    text = a.ctl("node", "list")
    assert text.returncode == 0 and "mx2" in text.stdout and "NO" in text.stdout, text.stdout
    assert a.ctl_json("node", "forget", "mx2") == {"forgotten": "mx2"}
    assert [n["name"] for n in a.ctl_json("node", "list")["nodes"]] == ["mx1"]
    wait_until(lambda: state_on(a) == "migrated", 3, what="migrated once mx2 is forgotten")
    wait_until(lambda: "a-new-0" in tags(cluster.sink_new), 10, what="the newer message delivered")
    r = a.ctl("node", "forget", "mx9")
    assert r.returncode == 1 and "no node named mx9" in r.stderr


def test_check_config_says_whether_postgresql_answers(tmp_path, postgres):
    sink_old, sink_new = Sink("old", tmp_path), Sink("new", tmp_path)
    node = Holdd(tmp_path, sink_old, sink_new,
                 overrides={"cluster": {"postgresql": postgres.conninfo, "node": "mx1"}})
    try:
        ok = subprocess.run([node.bin, "--config", str(node.config_path), "--check-config"],
                            capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert "cluster: node mx1, PostgreSQL" in ok.stdout and "reachable" in ok.stdout, ok.stdout
        postgres.stop()
        down = subprocess.run([node.bin, "--config", str(node.config_path), "--check-config"],
                              capture_output=True, text=True, timeout=30)
        # Not an error: systemd runs --check-config before each start, and a node
        # starts without its database.
        assert down.returncode == 0, down.stderr
        assert "cluster.postgresql: warning: cannot connect to PostgreSQL" in down.stderr, down.stderr
        node.config["cluster"] = {"node": "mx 1"}
        node.write_config()
        bad = subprocess.run([node.bin, "--config", str(node.config_path), "--check-config"],
                             capture_output=True, text=True, timeout=30)
        assert bad.returncode == 1
        assert "cluster.postgresql: is required" in bad.stderr, bad.stderr
        assert "cluster.node: must be 1 to 63 letters" in bad.stderr, bad.stderr
    finally:
        node.cleanup()


def test_a_partition_between_one_node_and_postgresql_is_the_database_down_for_that_node(tmp_path, postgres):
    link = Link(postgres.port)
    c = Cluster(tmp_path, postgres, ["mx1", "mx2"])
    c["mx2"].config["cluster"]["postgresql"] = postgres.conninfo.replace(f"port={postgres.port}",
                                                                         f"port={link.port}")
    c["mx2"].write_config()
    try:
        c.start()
        a, b = c["mx1"], c["mx2"]
        a.ctl_json("lock", "bob@example.com")
        wait_until(lambda: state_on(b, "bob@example.com") == "held", 2, what="mx2 holds bob")

        link.cut()
        wait_until(lambda: b.ctl_json("status")["cluster"]["database"] == "unreachable", 15,
                   what="mx2 cut off")
        assert a.ctl_json("status")["cluster"]["database"] == "connected"
        # mx2: state changes refused, mail still flows with the states it knows.
        r = b.ctl("release", "bob@example.com")
        assert r.returncode == 1 and "PostgreSQL unreachable" in r.stderr, r.stderr
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-cut", 0))
        send_ok(b.smtp_port, "s@sender.test", ["bob@example.com"], message("bob-cut", 0))
        wait_until(lambda: tags(c.sink_old) == ["b-cut-0"], 10, what="anna's mail relayed by mx2")
        b.wait_queued("bob@example.com", 1)
        # mx1 goes on; once mx2 has not been seen for 5 s, a lock no longer waits for it.
        wait_until(lambda: not alive_for(a, "mx2"), 15, what="mx2 no longer alive for mx1")
        a.ctl_json("lock", MAILBOX)
        assert state_on(b) == "old"  # mx2 cannot know yet

        link.heal()
        # mx2 reconnects and catches up: anna is held there too, bob's release works.
        wait_until(lambda: state_on(b) == "held", 15, what="mx2 applies the lock made while it was cut off")
        b.ctl_json("release", "bob@example.com")
        wait_until(lambda: tags(c.sink_new, "bob@example.com") == ["bob-cut-0"], 15, what="bob's mail released")
        send_ok(b.smtp_port, "s@sender.test", [MAILBOX], message("b-after", 0))
        b.wait_queued(MAILBOX, 1)
        assert tags(c.sink_old) == ["b-cut-0"]
        c.stop()
    finally:
        c.cleanup()
        link.close()
