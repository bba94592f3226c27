#!/usr/bin/env python3
"""Many concurrent idle SMTP sessions, the server's memory meanwhile, and whether a
well-behaved client is still served quickly.

    bench/idle.py --port PORT --pid SERVER_PID [--count 10000] [--probes 20]

Opens COUNT connections (at most 200 handshakes at a time), reads each banner and
sends EHLO, then leaves them idle. While all of them are open it reads VmRSS,
RssAnon and VmHWM of SERVER_PID from /proc, then runs PROBES complete transactions
(connect, EHLO, MAIL, RCPT, DATA with 4 KiB, 250, QUIT) one after the other on a
fresh connection each and times them. Checks that the idle sessions are still open,
closes everything, prints one JSON object. Needs RLIMIT_NOFILE above COUNT (raises
the soft limit up to the hard one itself).
"""
import argparse
import asyncio
import json
import resource
import socket
import sys
import time


def status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                parts = value.split()
                out[key] = int(parts[0]) if parts else None  # kB, or a count for Threads
    return out


async def read_reply(reader):
    while True:
        raw = await reader.readline()
        if not raw:
            raise ConnectionError("closed")
        if len(raw) < 4 or raw[3:4] != b"-":
            return int(raw[:3])


async def open_idle(host, port, sem, conns, failures):
    async with sem:
        try:
            reader, writer = await asyncio.open_connection(host, port)
            if await read_reply(reader) != 220:
                raise RuntimeError("no 220 banner")
            writer.write(b"EHLO idle.bench.test\r\n")
            if await read_reply(reader) != 250:
                raise RuntimeError("EHLO refused")
            conns.append((reader, writer))
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures.append(repr(e))


def probe(host, port, content) -> float:
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as s:
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise ConnectionError("closed")
                if len(line) < 4 or line[3:4] != b"-":
                    return int(line[:3])

        def cmd(data, want):
            s.sendall(data)
            got = reply()
            if got != want:
                raise RuntimeError(f"{data[:20]!r}: {got}")

        if reply() != 220:
            raise RuntimeError("banner")
        cmd(b"EHLO probe.bench.test\r\n", 250)
        cmd(b"MAIL FROM:<probe@bench.test>\r\n", 250)
        cmd(b"RCPT TO:<probe@example.com>\r\n", 250)
        cmd(b"DATA\r\n", 354)
        cmd(content + b".\r\n", 250)
        cmd(b"QUIT\r\n", 221)
    return (time.perf_counter() - t0) * 1000.0


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--probes", type=int, default=20)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    before = status(a.pid)
    conns, failures = [], []
    sem = asyncio.Semaphore(200)
    t0 = time.perf_counter()
    await asyncio.gather(*(open_idle(a.host, a.port, sem, conns, failures) for _ in range(a.count)))
    open_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    during = status(a.pid)

    content = b"Subject: probe\r\n\r\n" + b"x" * 70 + b"\r\n"
    content = content + (b"y" * 78 + b"\r\n") * (4096 // 80)
    loop = asyncio.get_running_loop()
    probes = []
    probe_errors = []
    for _ in range(a.probes):
        try:
            probes.append(await loop.run_in_executor(None, probe, a.host, a.port, content))
        except Exception as e:  # noqa: BLE001
            probe_errors.append(repr(e))
    # Are the idle sessions still there? A closed one reads EOF at once.
    still_open = 0
    for reader, _ in conns:
        try:
            data = await asyncio.wait_for(reader.read(1), timeout=0.0005)
            if data:
                still_open += 1  # it said something (unexpected, but open)
        except asyncio.TimeoutError:
            still_open += 1
        except Exception:  # noqa: BLE001
            pass
    after = status(a.pid)
    for _, w in conns:
        w.close()
    probes.sort()
    print(json.dumps({
        "requested": a.count, "opened": len(conns), "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "open_seconds": round(open_s, 2), "still_open": still_open,
        "rss_before_kib": before.get("VmRSS"), "rss_idle_kib": during.get("VmRSS"),
        "rss_anon_idle_kib": during.get("RssAnon"), "rss_file_idle_kib": during.get("RssFile"),
        "hwm_kib": after.get("VmHWM"),
        "probe_ms_median": round(probes[len(probes) // 2], 2) if probes else None,
        "probe_ms_max": round(probes[-1], 2) if probes else None,
        "probe_errors": len(probe_errors), "first_probe_error": probe_errors[0] if probe_errors else None,
    }))
    return 0 if not failures and not probe_errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
