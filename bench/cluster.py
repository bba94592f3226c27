#!/usr/bin/env python3
"""Several nodes (docs/cluster.md): what a state change costs with N holdd nodes on
one machine sharing a real PostgreSQL (started here, as in the tests).

    python3 bench/cluster.py [--nodes 3] [--mailboxes 500] [--per 2]

Builds nothing: uses build/holdd and build/holdctl (HOLDD_BIN, HOLDCTL_BIN). For
each of lock, release, revert of MAILBOXES mailboxes (one holdctl command, issued on
the first node) it prints how long the command took to return (lock: every node
confirmed nothing is in flight; release: every node sealed its backlog) and, for
release, how long until every mailbox was `migrated` on every node with PER held
messages per mailbox per node replayed to a sink. Also: how long one state change
takes to be applied by the other nodes (median of 20), and the rows it left.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
os.environ.setdefault("HOLDD_SOURCE_DIR", str(HERE.parent))

import helpers  # noqa: E402
from helpers import Holdd, Sink, wait_until  # noqa: E402
from postgres import Postgres  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--mailboxes", type=int, default=500)
    ap.add_argument("--per", type=int, default=2, help="held messages per mailbox per node")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="holdd-cluster-bench-", dir="/var/tmp"))
    mailboxes = [f"user{i:05d}@example.com" for i in range(args.mailboxes)]
    pg = Postgres(work / "postgres")
    sink_old, sink_new = Sink("old", work), Sink("new", work)
    nodes = []
    try:
        pg.start()
        sink_old.start()
        sink_new.start()
        for i in range(args.nodes):
            d = work / f"mx{i + 1}"
            d.mkdir()
            n = Holdd(d, sink_old, sink_new, overrides={
                "cluster": {"postgresql": pg.conninfo, "node": f"mx{i + 1}"},
                "directory": {"recipients": "any"},
                "delivery": {"concurrency": 20}})
            n.start()
            nodes.append(n)
        first = nodes[0]
        listfile = work / "batch.txt"
        listfile.write_text("\n".join(mailboxes) + "\n")

        def states(node):
            return {m["mailbox"]: m["state"] for m in node.ctl_json("list")["mailboxes"]}

        # Apply latency of one change, seen from another node.
        lags = []
        for k in range(20):
            target = "held" if k % 2 == 0 else "old"
            verb = "lock" if target == "held" else "revert"
            t0 = time.monotonic()
            first.ctl_json(verb, mailboxes[0])
            wait_until(lambda: nodes[-1].ctl_json("show", mailboxes[0])["state"] == target, 5, interval=0.005)
            lags.append(time.monotonic() - t0)

        t0 = time.monotonic()
        first.ctl_json("lock", "--file", listfile, timeout=600)
        lock_s = time.monotonic() - t0
        # Held mail on every node.
        import smtplib
        for n in nodes:
            with smtplib.SMTP("127.0.0.1", n.smtp_port, timeout=60) as c:
                for m in mailboxes:
                    for j in range(args.per):
                        c.sendmail("s@sender.test", [m], f"Subject: {j}\r\n\r\nbody\r\n".encode())
        held = args.nodes * args.mailboxes * args.per
        t0 = time.monotonic()
        first.ctl_json("release", "--file", listfile, timeout=600)
        release_s = time.monotonic() - t0
        def all_migrated():
            for n in nodes:
                seen = states(n)  # one holdctl list per node
                if any(seen.get(m) != "migrated" for m in mailboxes):
                    return False
            return True
        wait_until(all_migrated, 600, interval=0.05, what="migrated everywhere")
        migrated_s = time.monotonic() - t0
        wait_until(lambda: len(sink_new.deliveries()) >= held, 600, interval=0.2, what="every held message")
        t0 = time.monotonic()
        first.ctl_json("revert", "--file", listfile, timeout=600)
        revert_s = time.monotonic() - t0
        rows = {t: pg.sql(f"SELECT count(*) FROM {t}")[0][0]
                for t in ("holdd_mailboxes", "holdd_history", "holdd_release_progress", "holdd_nodes")}
        size = pg.sql("SELECT pg_size_pretty(pg_database_size('holdd'))")[0][0]
        print(f"cluster bench: {args.nodes} nodes, {args.mailboxes} mailboxes, {held} held messages "
              f"({args.per} per mailbox per node)")
        print(f"| step | seconds |\n|---|---:|")
        print(f"| one change applied by another node (median of 20; max) | {statistics.median(lags):.3f} ({max(lags):.3f}) |")
        print(f"| lock {args.mailboxes} (returns once every node confirmed) | {lock_s:.2f} |")
        print(f"| release {args.mailboxes} (returns once every node sealed its backlog) | {release_s:.2f} |")
        print(f"| ... until migrated on every node ({held} messages replayed) | {migrated_s:.2f} |")
        print(f"| revert {args.mailboxes} | {revert_s:.2f} |")
        print(f"rows: {rows}; database size {size}")
    finally:
        for n in nodes:
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001
                print(f"stop: {e}", file=sys.stderr)
            n.cleanup()
        sink_old.stop()
        sink_new.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
