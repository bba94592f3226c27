#!/usr/bin/env python3
"""Intake latency while the operator reads: /metrics scraped N times a second with a
large held backlog (issue 12: a scrape used to walk every queue entry on the I/O
thread).

    bench/scrape_under_backlog.py [--holdd BIN] [--backlog 200000] [--mailboxes 100]
                                  [--scrapes-per-second 10] [--messages 3000]

Starts holdd (release build) on loopback with every mailbox held, fills the backlog
with Postfix's smtp-source (1 KiB messages spread over the mailboxes), then runs
bench/latency.py (10 sessions, 4 KiB, to one held mailbox) twice: without scraping,
and with a thread that GETs /metrics every 1/N s. Prints one JSON object: the
latency figures of both runs and the scrape durations (p50/p99/max). Everything it
starts is stopped; the spool is in a temporary directory that is removed.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("holdd exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(100).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("no banner")


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return r.read().decode()


def gauge(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3)


def run_latency(port, messages, rcpt):
    out = subprocess.run([sys.executable, str(HERE / "latency.py"), "--port", str(port),
                          "--sessions", "10", "--messages", str(messages), "--size", "4096",
                          "--rcpt", rcpt], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"latency.py failed: {out.stdout} {out.stderr}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--holdd", default=str(ROOT / "build" / "holdd"))
    ap.add_argument("--backlog", type=int, default=200000)
    ap.add_argument("--mailboxes", type=int, default=100)
    ap.add_argument("--scrapes-per-second", type=float, default=10)
    ap.add_argument("--messages", type=int, default=3000)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="holdd-scrape-"))
    smtp, mport = free_port(), free_port()
    boxes = [f"m{i}@example.com" for i in range(a.mailboxes)]
    (work / "mailboxes.txt").write_text("\n".join(boxes) + "\n")
    (work / "aliases.txt").write_text("")
    (work / "holdd.toml").write_text(f"""
[server]
listen = ["127.0.0.1:{smtp}"]
hostname = "bench.test"
max_connections = 500
max_connections_per_ip = 500
[spool]
path = "{work}/spool"
min_free_disk = "1MiB"
[control]
socket = "{work}/control.sock"
metrics_listen = "127.0.0.1:{mport}"
[directory]
domains = ["example.com"]
mailboxes = "{work}/mailboxes.txt"
aliases = "{work}/aliases.txt"
initial_state = "held"
[auth]
spf = false
dkim = false
dmarc = false
""")
    log = open(work / "holdd.log", "wb")
    proc = subprocess.Popen([a.holdd, "--config", str(work / "holdd.toml")], stdout=log, stderr=log)
    result = {"holdd": a.holdd, "backlog": a.backlog, "mailboxes": a.mailboxes,
              "scrapes_per_second": a.scrapes_per_second}
    try:
        wait_banner(smtp, proc)
        t0 = time.monotonic()
        per_box = a.backlog // a.mailboxes
        # 10 smtp-source runs at a time, each filling one mailbox.
        for first in range(0, a.mailboxes, 10):
            runs = [subprocess.Popen(["smtp-source", "-c", "-d", "-s", "5", "-m", str(per_box),
                                      "-l", "1024", "-f", "fill@bench.test", "-t", box,
                                      f"127.0.0.1:{smtp}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for box in boxes[first:first + 10]]
            for r in runs:
                r.wait()
        result["fill_seconds"] = round(time.monotonic() - t0, 1)
        text = metrics(mport)
        result["held_messages"] = gauge(text, "holdd_held_messages")

        result["quiet"] = run_latency(smtp, a.messages, boxes[0])

        durations, stop = [], threading.Event()

        def scrape():
            period = 1.0 / a.scrapes_per_second
            while not stop.is_set():
                s = time.perf_counter()
                metrics(mport)
                d = time.perf_counter() - s
                durations.append(d * 1000)
                stop.wait(max(0.0, period - d))

        scraper = threading.Thread(target=scrape)
        scraper.start()
        try:
            result["scraped"] = run_latency(smtp, a.messages, boxes[0])
        finally:
            stop.set()
            scraper.join()
        result["scrapes"] = len(durations)
        result["scrape_ms"] = {"p50": pct(durations, 0.5), "p99": pct(durations, 0.99),
                               "max": round(max(durations), 3) if durations else None}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
