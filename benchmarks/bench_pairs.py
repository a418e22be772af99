"""Pairs per second of ``make_pair`` for each protocol, on one CPU process.

Runs over the embedded sample set (or ``--data``), cycling through its pairs; photos are decoded
once per source thanks to the source's small image cache, as in a training epoch whose pairs
come grouped by photo. ``--cold`` disables that cache (every pair decodes its photo).

Usage::

    .venv/bin/python benchmarks/bench_pairs.py
    .venv/bin/python benchmarks/bench_pairs.py --protocols seed,warp,negatives --pairs 300
    .venv/bin/python benchmarks/bench_pairs.py --data /path/to/coco --cold
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset path (default: the embedded sample set)")
    ap.add_argument("--protocols", default="seed,homography,photometric,warp,negatives")
    ap.add_argument("--pairs", type=int, default=200, help="pairs timed per protocol")
    ap.add_argument("--cold", action="store_true", help="no image cache: decode every photo")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (1 = like a DataLoader worker)")
    args = ap.parse_args()

    import cv2

    from tmatch.data import make_pair, open_source

    cv2.setNumThreads(args.threads)
    src = open_source(args.data, cache_images=0 if args.cold else 8)
    n = len(src)
    print(f"source: {src.name}, {n} pairs; {args.pairs} pairs per protocol; "
          f"{'cold' if args.cold else 'cached'} photos; {args.threads} OpenCV thread(s)")
    for name in [p.strip() for p in args.protocols.split(",") if p.strip()]:
        make_pair(src, 0, name, seed=0)  # warm-up: imports (albumentations), caches
        t0 = time.perf_counter()
        for k in range(args.pairs):
            make_pair(src, k % n, name, seed=1)
        dt = time.perf_counter() - t0
        print(f"{name:28s} {args.pairs / dt:8.1f} pairs/s   {1000 * dt / args.pairs:7.2f} ms/pair")


if __name__ == "__main__":
    main()
