"""Training throughput (pairs/s) of both networks on this machine's CPU (or a GPU).

For each preset, builds the trainer as ``tmatch train`` does (model, loss, optimiser, AMP on
CUDA) and times optimiser steps — forward, loss, backward, update — on one batch already in
memory ("step"), then whole steps fed by the DataLoader ("loader", pair making included, with
``--workers``). Warm-up steps are not timed.

Usage::

    .venv/bin/python benchmarks/bench_train.py                       # CPU, both presets
    .venv/bin/python benchmarks/bench_train.py --presets neural --batch-size 16 --threads 2
    .venv/bin/python benchmarks/bench_train.py --device cuda --batch-size 32 --workers 8
"""

from __future__ import annotations

import argparse
import tempfile
import time


def bench(preset: str, batch_size: int, steps: int, device: str, workers: int,
          input_size: int | None) -> tuple[float, float, str]:
    import torch

    from tmatch.train.config import apply_overrides, load_config
    from tmatch.train.distributed import DistContext, pick_device
    from tmatch.train.loop import Trainer

    dev = pick_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = apply_overrides(load_config(preset), batch_size=batch_size, workers=workers,
                              train_pairs=batch_size * (steps + 2), valid_pairs=0, out=tmp,
                              device=str(dev), progress=False, input_size=input_size)
        tr = Trainer(cfg, DistContext(device=dev))
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        batch = next(iter(tr.train_loader)).to(dev)
        for _ in range(2):
            tr.step(batch)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.step(batch)
        sync()
        step_rate = steps * batch_size / (time.perf_counter() - t0)
        it = iter(tr.train_loader)
        tr.step(next(it).to(dev))
        sync()
        t0 = time.perf_counter()
        n = 0
        for b in it:
            tr.step(b.to(dev, non_blocking=True))
            n += len(b)
        sync()
        loader_rate = n / (time.perf_counter() - t0)
        desc = f"{cfg.model.arch}/{cfg.model.encoder} S={cfg.model.input_size}"
    return step_rate, loader_rate, desc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="neural,seed")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4, help="timed steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--input-size", type=int, default=None, help="override the preset's S")
    args = ap.parse_args()

    import os

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}; {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch "
          f"threads; batch {args.batch_size}, {args.steps} timed steps, {args.workers} workers")
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        step, loader, desc = bench(preset, args.batch_size, args.steps, args.device, args.workers,
                                   args.input_size)
        print(f"{preset:8s} {desc:40s} step {step:7.2f} pairs/s   with loader {loader:7.2f} pairs/s",
              flush=True)


if __name__ == "__main__":
    main()
