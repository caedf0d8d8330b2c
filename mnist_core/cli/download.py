"""`download`: fetch, verify and cache MNIST, and print the checksums."""

from __future__ import annotations

import sys
import time


def add_parser(sub) -> None:
    p = sub.add_parser("download", help="fetch, verify and cache MNIST")
    p.add_argument("--data", help="folder or .npz to read MNIST from (also: MNIST_DATA)")
    p.add_argument("-v", "--verbose", action="store_true", help="say which sources were tried")
    p.set_defaults(run=run)


def run(args, events) -> None:
    from mnist_core import data

    t0 = time.perf_counter()
    mnist = data.load(args.data, on_status=lambda m: print(m, file=sys.stderr) if args.verbose else None)
    print(f"source: {mnist.source}  ({time.perf_counter() - t0:.2f} s)")
    print(f"cache:  {data.cache_path()}")
    for key, fname in data.FILES.items():
        print(f"sha256 {data.sha256_of(getattr(mnist, key))}  {fname}")
