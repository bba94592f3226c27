#!/usr/bin/env python3
"""Intake latency seen by an SMTP client: end of DATA (the final ".") -> the 250.

    bench/latency.py --port PORT [--sessions 10] [--messages 3000] [--size 4096]

S sessions (asyncio, one connection each, many messages per connection) send
MESSAGES messages of SIZE bytes in total. For each message the client writes the
content, then timestamps (time.perf_counter_ns) just before writing the final
".\r\n" and again when the complete reply line has been read. Only 250 replies count;
anything else is an error. Prints one JSON object: samples, errors, p50/p90/p99/p99.9/
max in milliseconds, and the messages/s of the whole run.

What it measures includes this Python client's own scheduling delay (one process,
one event loop, shared with the server on the same cores), so it is an upper bound
of the server's latency; the same client measures every server alike.
"""
import argparse
import asyncio
import json
import sys
import time


def body(size: int) -> bytes:
    header = b"From: bench <sender@bench.test>\r\nTo: rcpt@example.com\r\nSubject: latency\r\n\r\n"
    line = b"La de da de da 1. La de da de da 2. La de da de da 3. La de da de da 4.\r\n"
    n = max(1, (size - len(header)) // len(line))
    return header + line * n


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    lines = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise ConnectionError("connection closed")
        lines.append(raw.decode("latin-1").rstrip("\r\n"))
        if len(raw) < 4 or raw[3:4] != b"-":
            return int(lines[-1][:3]), "\n".join(lines)


async def expect(reader, code: int, what: str):
    got, text = await read_reply(reader)
    if got != code:
        raise RuntimeError(f"{what}: expected {code}, got {text!r}")


async def session(host, port, count, content, samples, errors, rcpt):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await expect(reader, 220, "banner")
        writer.write(b"EHLO latency.bench.test\r\n")
        await expect(reader, 250, "EHLO")
        for _ in range(count):
            writer.write(b"MAIL FROM:<sender@bench.test>\r\n")
            await expect(reader, 250, "MAIL")
            writer.write(b"RCPT TO:<" + rcpt + b">\r\n")
            await expect(reader, 250, "RCPT")
            writer.write(b"DATA\r\n")
            await expect(reader, 354, "DATA")
            writer.write(content)
            await writer.drain()
            t0 = time.perf_counter_ns()
            writer.write(b".\r\n")
            code, text = await read_reply(reader)
            t1 = time.perf_counter_ns()
            if code == 250:
                samples.append(t1 - t0)
            else:
                errors.append(text)
        writer.write(b"QUIT\r\n")
        await read_reply(reader)
    finally:
        writer.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    # nearest rank
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 1)) - 1))
    return sorted_values[k]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rcpt", default="rcpt@example.com")
    a = ap.parse_args()
    content = body(a.size)
    samples, errors = [], []
    per = [a.messages // a.sessions + (1 if i < a.messages % a.sessions else 0) for i in range(a.sessions)]
    t0 = time.perf_counter()
    await asyncio.gather(*(session(a.host, a.port, n, content, samples, errors, a.rcpt.encode())
                           for n in per))
    elapsed = time.perf_counter() - t0
    s = sorted(samples)
    ms = lambda ns: None if ns is None else round(ns / 1e6, 3)
    print(json.dumps({
        "samples": len(s), "errors": len(errors), "first_error": errors[0] if errors else None,
        "p50_ms": ms(percentile(s, 0.50)), "p90_ms": ms(percentile(s, 0.90)),
        "p99_ms": ms(percentile(s, 0.99)), "p999_ms": ms(percentile(s, 0.999)),
        "max_ms": ms(s[-1] if s else None),
        "msgs_per_s": round(len(s) / elapsed, 1) if elapsed > 0 else None,
    }))
    return 1 if errors or not s else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
