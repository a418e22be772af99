"""How much time ``tmatch bench`` adds per case on top of the matchers.

A trivial matcher (it answers "absent" at once) is run through the harness; the time per case
that remains after subtracting opening the source (once per run), the pairs' generation (timed alone, on the same cases) and the
matcher's own time is the harness's overhead: IoU at native resolution, RLE encoding, memory
probes, JSON lines appended with flush + fsync, bookkeeping. The final tables/report are timed
separately (once per run, not per case). For scale, the same cases are timed with SIFT.

Usage::

    .venv/bin/python benchmarks/bench_overhead.py                  # embedded sample set
    .venv/bin/python benchmarks/bench_overhead.py --data DIR --limit 200 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tmatch.match import Match
from tmatch.matchers.base import Matcher


class NullMatcher(Matcher):
    """Finds nothing, instantly: what remains of a run's time is the harness and the data."""

    name = "null"
    description = "answers 'absent' without looking (overhead measurement)"

    def _match(self, prepared, template, image) -> Match:
        return Match.absent(image.shape[:2], method=self.name)


def pieces(data, keys) -> dict[str, float]:
    """Time the harness's per-case steps one by one."""
    from tmatch import geometry, rle
    from tmatch.bench.evaluate import process_peak_rss_mb, process_rss_mb, reseed
    from tmatch.bench.store import append_lines
    from tmatch.data import make_pair

    pair = make_pair(data.open(), keys[0].index, protocol=keys[0].protocol, seed=0)
    pred = np.roll(pair.mask, 3, axis=1)
    row = {"case": keys[0].case, "mask": rle.encode(pred), "iou": 0.5, "pad": "x" * 400}

    def med(fn, n=200) -> float:
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1000.0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        return {
            "reseed RNGs": med(lambda: reseed(0, "warp-000001")),
            "IoU at native size": med(lambda: geometry.iou(pred, pair.mask)),
            "RLE encode": med(lambda: rle.encode(pred)),
            "RSS + peak RSS probes": med(lambda: (process_rss_mb(), process_peak_rss_mb())),
            "append a line (flush)": med(lambda: append_lines(path, [row], sync=False)),
            "append a line + fsync": med(lambda: append_lines(path, [row])),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data folder (default: embedded sample set)")
    ap.add_argument("--protocols", default="seed,warp,negatives")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (best kept)")
    ap.add_argument("--no-sift", action="store_true", help="skip the SIFT reference")
    args = ap.parse_args()

    from tmatch.bench import DataSpec, load_table, run_bench, write_report, write_tables
    from tmatch.bench.run import case_keys
    from tmatch.data import make_pair
    from tmatch.registry import MATCHERS

    MATCHERS["null"] = f"{__name__}:NullMatcher"
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    data = DataSpec.from_options(args.data)
    keys = case_keys(len(data.open()), protocols, args.limit)
    n = len(keys)

    def open_source() -> float:
        t0 = time.perf_counter()
        data.open()
        return time.perf_counter() - t0

    def pairs_alone() -> float:
        src = data.open()
        t0 = time.perf_counter()
        for k in keys:
            make_pair(src, k.index, protocol=k.protocol, seed=0)
        return time.perf_counter() - t0

    def harness(method: str) -> tuple[float, float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_bench(Path(tmp) / "run", [method], protocols, data=data, limit=args.limit)
            t_run = time.perf_counter() - t0
            matcher_s = float(load_table(Path(tmp) / "run")["ms"].sum()) / 1000.0
            t1 = time.perf_counter()
            write_tables(Path(tmp) / "run")
            write_report(Path(tmp) / "run", gallery=0)
            return t_run, matcher_s, time.perf_counter() - t1

    pairs_alone()  # warm caches and imports
    harness("null")
    t_open = min(open_source() for _ in range(args.repeat))
    t_pairs = min(pairs_alone() for _ in range(args.repeat))
    runs = [harness("null") for _ in range(args.repeat)]
    t_run, t_null, t_finish = min(runs, key=lambda r: r[0])
    over = (t_run - t_open - t_pairs - t_null) / n * 1000.0
    print(f"cases: {n} ({', '.join(protocols)}; {data.describe()}), best of {args.repeat}")
    print(f"opening the source, once   {t_open * 1000:8.1f} ms")
    print(f"pair generation alone      {t_pairs / n * 1000:8.2f} ms/case")
    print(f"run with the null matcher  {t_run / n * 1000:8.2f} ms/case (matcher itself {t_null / n * 1000:.3f})")
    print(f"harness overhead           {over:8.2f} ms/case   "
          f"(spread over runs: {statistics.pstdev(r[0] for r in runs) / n * 1000:.2f})")
    print(f"tables + report, once      {t_finish * 1000:8.1f} ms  (no galleries)")
    print("per-case pieces (median of 200, on the first pair's size):")
    for name, ms in pieces(data, keys).items():
        print(f"  {name:26s} {ms:8.3f} ms")
    if not args.no_sift:
        t_sift, s_sift, _ = harness("sift")
        print(f"for scale, sift            {s_sift / n * 1000:8.2f} ms/case matcher time, "
              f"{t_sift / n * 1000:.2f} ms/case in the harness "
              f"(overhead = {100 * over / (s_sift / n * 1000):.1f}% of sift)")


if __name__ == "__main__":
    main()
