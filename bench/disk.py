#!/usr/bin/env python3
"""How many durable writes a second the disk under DIR does right now, one thread:

    bench/disk.py DIR [--seconds 1.5]

 - fdatasync_per_s: overwrite 4 KiB of a preallocated file + fdatasync (one cache
   flush), about what one Postfix queue file fsync costs;
 - lmdb_commit_per_s: the same plus a 120-byte O_DSYNC write elsewhere in the
   file, which is what one durable LMDB commit does (data pages flushed, then the
   meta page written synchronously: two flushes).
Prints one JSON object. On a shared virtual disk these numbers move with the
other tenants' I/O: bench/run.sh measures them at the start and at the end.
"""
import argparse
import json
import os
import tempfile
import time


def rate(fn, seconds):
    n = 0
    t0 = time.perf_counter()
    while True:
        fn(n)
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds and n >= 5:
            return round(n / dt, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args()
    block = b"x" * 4096
    fd, path = tempfile.mkstemp(dir=a.dir, prefix="disk-probe.")
    try:
        os.pwrite(fd, b"\0" * (4096 * 256), 0)
        os.fsync(fd)
        mfd = os.open(path, os.O_RDWR | os.O_DSYNC)
        try:
            def flush(i):
                os.pwrite(fd, block, 4096 * (1 + i % 255))
                os.fdatasync(fd)

            def commit(i):
                flush(i)
                os.pwrite(mfd, block[:120], 0 if i % 2 else 2048)

            print(json.dumps({"fdatasync_per_s": rate(flush, a.seconds),
                              "lmdb_commit_per_s": rate(commit, a.seconds)}))
        finally:
            os.close(mfd)
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
