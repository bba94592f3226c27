#!/usr/bin/env python3
"""What one durable commit costs on this disk as a function of how many scattered
4 KiB pages it writes: N page writes at random offsets of a preallocated file,
fdatasync, then a 120-byte O_DSYNC write (LMDB's meta page). Prints the mean ms per
commit for 1, 4, 8 and 16 pages, ROUNDS times (the machine's noise shows in the
spread). An LMDB commit of one 4 KiB message writes about 10 pages, 8 of them
scattered (strace of bench_spool_commit), which is why it costs several times the
1-page probe of bench/disk.py.

    bench/disk_pages.py DIR [ROUNDS]
"""
import os
import random
import sys
import time


def main():
    directory = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    path = os.path.join(directory, f"holdd-disk-pages-{os.getpid()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    meta = -1
    try:
        pages_in_file = 20000
        os.write(fd, b"\0" * (4096 * pages_in_file))
        os.fsync(fd)
        meta = os.open(path, os.O_RDWR | os.O_DSYNC)
        page = b"x" * 4096

        def commit_ms(pages, commits=300):
            start = time.perf_counter()
            for _ in range(commits):
                for _ in range(pages):
                    os.pwrite(fd, page, 4096 * random.randrange(2, pages_in_file))
                os.fdatasync(fd)
                os.pwrite(meta, b"m" * 120, 32)
            return (time.perf_counter() - start) / commits * 1000

        for _ in range(rounds):
            print("  ".join(f"{n:2d} pages: {commit_ms(n):.3f} ms" for n in (1, 4, 8, 16)), flush=True)
    finally:
        if meta >= 0:
            os.close(meta)
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
