"""Pairs per second delivered by the training DataLoader (PairDataset + workers).

Builds each preset's training dataset exactly as ``tmatch train`` does (sources, split,
protocol with its options, negatives, ``prepare_inputs``/``prepare_target`` at the preset's
input size) and times whole batches coming out of a DataLoader with 0, 1, 2... workers. The
first batch (worker start, imports, caches) is not timed.

Usage::

    .venv/bin/python benchmarks/bench_dataloader.py
    .venv/bin/python benchmarks/bench_dataloader.py --presets neural --workers 0,2,4 --pairs 256
    .venv/bin/python benchmarks/bench_dataloader.py --data cutouts:/path/stamps --data /photos
"""

from __future__ import annotations

import argparse
import time


def bench(preset: str, workers: int, pairs: int, batch_size: int, data: list[str] | None) -> float:
    import torch

    from tmatch.data.torch_dataset import collate
    from tmatch.train.config import apply_overrides, load_config
    from tmatch.train.data import build_data
    from tmatch.train.distributed import SlotSampler

    cfg = apply_overrides(load_config(preset), train_pairs=pairs + batch_size, data=data)
    ds = build_data(cfg).train
    sampler = SlotSampler(len(ds))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                         num_workers=workers, collate_fn=collate,
                                         prefetch_factor=4 if workers else None)
    it = iter(loader)
    next(it)  # warm-up batch: worker start, imports, first photos
    t0 = time.perf_counter()
    n = sum(len(b) for b in it)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="neural,seed", help="comma-separated presets")
    ap.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
    ap.add_argument("--pairs", type=int, default=128, help="pairs timed per setting")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--data", action="append", default=None,
                    help="training source spec(s) as for `tmatch train --data` (default: the preset's)")
    args = ap.parse_args()

    import os

    import torch

    torch.set_num_threads(1)
    print(f"{os.cpu_count()} CPU cores; {args.pairs} pairs per setting, batch {args.batch_size}")
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        for w in [int(x) for x in args.workers.split(",")]:
            rate = bench(preset, w, args.pairs, args.batch_size, args.data)
            print(f"{preset:8s} workers={w}  {rate:8.1f} pairs/s", flush=True)


if __name__ == "__main__":
    main()
