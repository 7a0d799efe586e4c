#!/usr/bin/env python3
"""Measures this disk's fdatasync latency the way the command log uses it.

Writes WRITE_BYTES and fdatasyncs, in a loop, into a file in DIR, for each mode side by side:
  append     - the file grows with every write (what a log without preallocation does);
  prealloc   - the file was zero-filled first and is overwritten (what the log does now);
  fallocate  - the file was posix_fallocate'd (unwritten extents) and is overwritten.
With WRITERS > 1 the writers run at once, as three co-located nodes would.

Then, with --stalls SECONDS, it runs one light preallocated writer (about 1,000 syncs/s) on an
otherwise idle machine and lists every fdatasync over 20 ms with its time: stalls that show up
here come from the disk under the machine, not from Stockade.

Usage: scripts/bench/fsync-probe.py [--dir bench-out] [--syncs 15000] [--writers 3] [--stalls 120]
"""
import argparse
import datetime
import multiprocessing
import os
import time

WRITE_BYTES = 4000


def quantiles(latencies):
    latencies = sorted(latencies)
    at = lambda q: latencies[int(q * (len(latencies) - 1))] * 1000
    return f"p50 {at(.5):.3f} ms  p99 {at(.99):.3f} ms  p99.9 {at(.999):.3f} ms  max {latencies[-1] * 1000:.1f} ms"


def writer(args):
    mode, directory, syncs, tag = args
    path = os.path.join(directory, f"fsync-probe-{os.getpid()}-{tag}")
    size = syncs * WRITE_BYTES
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if mode == "prealloc":
            zeros = b"\0" * (1 << 20)
            for _ in range(size // len(zeros) + 1):
                os.write(fd, zeros)
            os.fsync(fd)
        elif mode == "fallocate":
            os.posix_fallocate(fd, 0, size + (1 << 20))
            os.fsync(fd)
        data = b"x" * WRITE_BYTES
        latencies = []
        for i in range(syncs):
            os.pwrite(fd, data, i * WRITE_BYTES)
            start = time.perf_counter()
            os.fdatasync(fd)
            latencies.append(time.perf_counter() - start)
        return latencies
    finally:
        os.close(fd)
        os.unlink(path)


def stalls(directory, seconds):
    path = os.path.join(directory, f"fsync-probe-{os.getpid()}-stalls")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    span = 64 << 20
    try:
        for _ in range(span >> 20):
            os.write(fd, b"\0" * (1 << 20))
        os.fsync(fd)
        offset, count, slow = 0, 0, []
        end = time.time() + seconds
        while time.time() < end:
            os.pwrite(fd, b"y" * 2000, offset)
            offset = (offset + 2000) % span
            start = time.perf_counter()
            os.fdatasync(fd)
            took = time.perf_counter() - start
            count += 1
            if took > 0.02:
                slow.append(f"{datetime.datetime.now():%H:%M:%S.%f}"[:-3] + f" {took * 1000:.0f} ms")
            time.sleep(0.001)
        print(f"stall probe: {count} fdatasyncs in {seconds} s, {len(slow)} over 20 ms")
        for line in slow:
            print("  " + line)
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="bench-out")
    parser.add_argument("--syncs", type=int, default=15000)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--stalls", type=int, default=0)
    options = parser.parse_args()
    os.makedirs(options.dir, exist_ok=True)
    for writers in sorted({1, options.writers}):
        for mode in ("append", "prealloc", "fallocate"):
            with multiprocessing.Pool(writers) as pool:
                results = pool.map(writer, [(mode, options.dir, options.syncs, tag) for tag in range(writers)])
            merged = [x for r in results for x in r]
            print(f"{writers} writer(s)  {mode:9}  {quantiles(merged)}")
    if options.stalls:
        stalls(options.dir, options.stalls)


if __name__ == "__main__":
    main()
