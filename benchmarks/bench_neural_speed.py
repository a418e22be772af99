"""Speed of the neural matchers on this machine's CPU (or GPU), PyTorch vs onnxruntime, next to SIFT.

For each model and runtime and each search-image size (long side 320, 512, 640 px; five real
photos from skimage, each call taking the next), it reports the median over ``--repeats`` runs of

* ``forward``: the network's search branch alone on one prepared image (template encoded once),
* ``match``: a full ``Matcher.match`` (template encoding + search + mask → polygon),
* ``per-frame``: ``match_many`` over ``--frames`` images divided by their number (video: the
  template is encoded once),

and SIFT's ``match`` on the same pairs, measured in alternating rounds with the network so
that load from other processes weighs on both alike (see :func:`_rounds`). Speed does not
depend on the weights' values, so the networks are untrained ones saved to a temporary
checkpoint (ONNX exports go to a temporary cache; the export is not timed).

    python benchmarks/bench_neural_speed.py                      # all models, sizes 320/512/640
    python benchmarks/bench_neural_speed.py --models neural-seg --threads 2 --json out.json
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
    "neural-seg": {"arch": "neural-seg"},
    "neural-seg-1scale": {"arch": "neural-seg", "options": {"scales": (1.0,)}},
    "dual-unet-lite0-320": {"arch": "dual-unet"},
    "dual-unet-resnet34-512": {"arch": "dual-unet", "encoder": "resnet34", "input_size": 512},
}


PHOTOS = ("astronaut", "rocket", "coffee", "chelsea", "immunohistochemistry")


def _pairs(size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(template, image) per skimage photo: the photo resized to long side ``size``, the template
    a crop of a third of its height and a quarter of its width."""
    from skimage import data

    out = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        h, w = photo.shape[:2]
        s = size / max(h, w)
        img = cv2.resize(photo, (round(w * s), round(h * s)),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        H, W = img.shape[:2]
        out.append((img[H // 4: H // 4 + H // 3, W // 3: W // 3 + W // 4], img))
    return out


class _Cycle:
    """Calls ``fn(i)`` with i = 0, 1, 2, ... modulo ``n``: each timed call takes the next photo."""

    def __init__(self, fn, n: int):
        self.fn, self.n, self.i = fn, n, 0

    def __call__(self):
        self.i = (self.i + 1) % self.n
        return self.fn(self.i)


def _rounds(fns: dict, repeats: int, rounds: int = 3) -> dict[str, float]:
    """Median ms of each function over ``repeats`` runs, taken in ``rounds`` rounds of one block
    per function (a warm-up call, then its share of the runs).

    Rounds spread the load of other processes over every contestant alike; blocks keep one
    library's thread pool busy at a time (alternating call by call, torch's OpenMP threads and
    OpenCV's spin against each other on 2 cores and torch slows down a hundredfold).
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    per = max(1, -(-repeats // rounds))
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()
            for _ in range(per):
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1000.0)
    return {k: statistics.median(v) for k, v in times.items()}


def _measure(m, sift, size: int, repeats: int, frames: int) -> dict:
    """Forward, match, per-frame and SIFT medians (ms) of matcher ``m`` at one image size."""
    from tmatch.models.inputs import prepare_image

    pairs = _pairs(size)
    encoded = [m._encoded(m.prepare(tpl), img.shape[:2]) for tpl, img in pairs]
    xs = [prepare_image(m.config, img, tpl.shape[:2])[0][None].numpy() for tpl, img in pairs]
    runner, n = m.runner(), len(pairs)
    t = _rounds({
        "sift": _Cycle(lambda i: sift.match(*pairs[i]), n),
        "forward": _Cycle(lambda i: runner.search(xs[i], encoded[i].encoding), n),
        "match": _Cycle(lambda i: m.match(*pairs[i]), n),
    }, repeats)
    many = _rounds({"many": lambda: [m.match_many(tpl, [img] * frames) for tpl, img in pairs]}, 3)
    return {"photos": list(PHOTOS), "input_size": m.config.input_size, "variants": len(encoded[0].variants),
            "sift_ms": t["sift"], "forward_ms": t["forward"], "match_ms": t["match"],
            "per_frame_ms": many["many"] / (frames * n)}


def run(models: list[str], sizes: list[int], runtimes: list[str], repeats: int, frames: int,
        threads: int | None) -> list[dict]:
    import torch

    import tmatch
    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint

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
            matcher = {"neural": "neural-seg"}.get(cfg.arch, cfg.arch)  # the matcher of each architecture
            m = tmatch.load_matcher(matcher, weights=weights, runtime=rt, threads=threads, **options)
            for size in sizes:
                rec = _measure(m, sift, size, repeats, frames)
                records.append({"model": name, "runtime": rt, "size": size, **rec})
                print(f"{name:22s} {rt:5s} size {size}: forward {rec['forward_ms']:6.1f}  "
                      f"match {rec['match_ms']:6.1f}  per-frame {rec['per_frame_ms']:6.1f}  "
                      f"sift {rec['sift_ms']:6.1f} ms  (match/sift {rec['match_ms'] / rec['sift_ms']:.2f})",
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
    ap.add_argument("--repeats", type=int, default=30)
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
