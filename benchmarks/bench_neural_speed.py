"""Speed of the neural matchers on this machine's CPU (or GPU), PyTorch vs onnxruntime, next to SIFT.

For each model and runtime and each search-image size (long side 320, 512, 640 px, a real photo
from skimage), it reports the median over ``--repeats`` runs of

* ``forward``: the network's search branch alone on one prepared image (template encoded once),
* ``match``: a full ``Matcher.match`` (template encoding + search + mask → polygon),
* ``per-frame``: ``match_many`` over ``--frames`` images divided by their number (video: the
  template is encoded once),

and SIFT's ``match`` on the same pairs, interleaved with the network's runs so that load
from other processes weighs on both alike. Speed does not depend on the weights' values, so the
networks are untrained ones saved to a temporary checkpoint (ONNX exports go to a temporary
cache, so the first call's export is not timed).

    python benchmarks/bench_neural_speed.py                      # all models, sizes 320/512/640
    python benchmarks/bench_neural_speed.py --models neural --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

MODELS = {
    "neural": dict(arch="neural"),
    "neural-1scale": dict(arch="neural", options={"scales": (1.0,)}),
    "dual-unet-lite0-320": dict(arch="dual-unet"),
    "dual-unet-resnet34-512": dict(arch="dual-unet", encoder="resnet34", input_size=512),
}


def _pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    photo = data.coffee()  # 400 x 600
    h, w = photo.shape[:2]
    s = size / max(h, w)
    img = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    H, W = img.shape[:2]
    tpl = img[H // 4: H // 4 + H // 3, W // 3: W // 3 + W // 4]
    return tpl, img


def _interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median ms of each function, run in turn ``repeats`` times after a warm-up, so that load
    from other processes hits every contestant alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000.0)
    return {k: statistics.median(v) for k, v in times.items()}


def run(models: list[str], sizes: list[int], runtimes: list[str], repeats: int, frames: int,
        threads: int | None) -> list[dict]:
    import torch

    import tmatch
    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint
    from tmatch.models.inputs import prepare_image

    records = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-neural-"))
    os.environ.setdefault("TMATCH_CACHE", str(tmp / "cache"))
    sift = tmatch.load_matcher("sift")
    for name in models:
        spec = dict(MODELS[name])
        options = spec.pop("options", {})
        cfg = ModelConfig(**spec)
        torch.manual_seed(0)
        weights = save_checkpoint(tmp / f"{name}.safetensors", build_model(cfg, pretrained=False).eval(), cfg)
        for rt in runtimes:
            m = tmatch.load_matcher(cfg.arch, weights=weights, runtime=rt, threads=threads, **options)
            runner = m.runner()
            for size in sizes:
                tpl, img = _pair(size)
                prepared = m.prepare(tpl)
                enc = m._encoded(prepared, img.shape[:2])
                x = prepare_image(cfg, img, tpl.shape[:2])[0][None].numpy()
                batch = [img] * frames
                t = _interleaved({
                    "sift": lambda: sift.match(tpl, img),
                    "forward": lambda: runner.search(x, enc.encoding),
                    "match": lambda: m.match(tpl, img),
                }, repeats)
                per = _interleaved({"many": lambda: m.match_many(tpl, batch)}, max(1, repeats // 4))["many"] / frames
                records.append(dict(model=name, runtime=rt, size=size, image=list(img.shape[:2]),
                                    input_size=cfg.input_size, variants=len(enc.variants),
                                    sift_ms=t["sift"], forward_ms=t["forward"], match_ms=t["match"],
                                    per_frame_ms=per))
                print(f"{name:22s} {rt:5s} size {size}: forward {t['forward']:6.1f}  match {t['match']:6.1f}  "
                      f"per-frame {per:6.1f}  sift {t['sift']:6.1f} ms  (match/sift {t['match'] / t['sift']:.2f})",
                      flush=True)
    return records


def table(records: list[dict]) -> str:
    """Markdown table: one row per (model, runtime); per size forward / match / per-frame ms and
    match time relative to SIFT's measured alongside."""
    sizes = sorted({r["size"] for r in records})
    head = "| model | runtime | " + " | ".join(f"{s} px: fwd / match / frame ms (match÷SIFT)" for s in sizes) + " |"
    lines = [head, "|" + "---|" * (2 + len(sizes))]
    keys = sorted({(r["model"], r["runtime"]) for r in records},
                  key=lambda k: (list(MODELS).index(k[0]), k[1]))
    for model, rt in keys:
        cells = []
        for s in sizes:
            r = next(r for r in records if (r["model"], r["runtime"], r["size"]) == (model, rt, s))
            cells.append(f"{r['forward_ms']:.1f} / {r['match_ms']:.1f} / {r['per_frame_ms']:.1f} "
                         f"({r['match_ms'] / r['sift_ms']:.2f})")
        lines.append(f"| {model} | {rt} | " + " | ".join(cells) + " |")
    sift = {s: statistics.median(r["sift_ms"] for r in records if r["size"] == s) for s in sizes}
    lines.append("| sift | opencv | " + " | ".join(f"– / {sift[s]:.1f} / –" for s in sizes) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--sizes", default="320,512,640", help="search image long sides")
    ap.add_argument("--runtimes", default="torch,onnx")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--frames", type=int, default=8, help="images per match_many call")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: runtime's own)")
    ap.add_argument("--json", type=Path, default=None, help="write the records here")
    a = ap.parse_args()
    if a.threads:
        cv2.setNumThreads(a.threads)
    records = run([m.strip() for m in a.models.split(",") if m.strip()],
                  [int(s) for s in a.sizes.split(",")], [r.strip() for r in a.runtimes.split(",")],
                  a.repeats, a.frames, a.threads)
    import torch

    print(f"\ncpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
          f"threads option: {a.threads}\n")
    print(table(records))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
