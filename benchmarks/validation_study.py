"""Iterate on our own validation split, never on the benchmark's data: one matcher configuration,
mean IoU per protocol (negatives: share correctly absent) and its median time.

The data are the held-out parts of the training sources (`neural-local`'s split, seed 0):
tuxpaint cut-outs of the validation split pasted on the validation wallpapers (photo protocols),
and our pages of seed 1 rendered at display scales 1–2 (screen protocols; the benchmark renders
seed 0, training seed 2). Pairs are cached in the output folder.

    python benchmarks/validation_study.py --spec '{"method": "neural-local"}' --n 30
    python benchmarks/validation_study.py --spec '{"method": "hybrid", "refiner": "sift"}' --only s:screen

IoU of the cut-out pairs is measured against the stamp's own outline (a quadrilateral answer
tops out near 0.6–0.7): compare configurations with it, do not quote it as accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import time
from pathlib import Path

import cv2
import numpy as np

import tmatch
from tmatch import geometry
from tmatch.data import make_pair, open_source
from tmatch.data.screens import ScreenSource, screens_dir
from tmatch.threads import limit_threads
from tmatch.train.neural_local_data import photo_groups, split

PHOTO_PROTOCOLS = ("seed", "warp", "rotate", "zoom-out", "zoom-in", "perspective", "negatives")
SCREEN_PROTOCOLS = ("seed", "screen", "negatives")
WALLPAPERS = ("/usr/share/backgrounds", "/usr/share/wallpapers")
STAMPS = "/usr/share/tuxpaint/stamps"


def validation_folders(root: Path) -> tuple[Path, Path]:
    """The validation wallpapers (≤ 1280 px JPEGs) and 40 validation cut-outs (links), made once."""
    photos, cutouts = root / "photos", root / "cutouts"
    if not photos.is_dir():
        photos.mkdir(parents=True)
        keys: dict[str, Path] = {}
        for r in WALLPAPERS:
            keys.update(photo_groups(r))
        for k in split(list(keys), 0.8, 0)[1]:
            im = cv2.imread(str(keys[k]))
            if im is None:
                continue
            f = 1280 / max(im.shape[:2])
            if f < 1:
                im = cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(photos / (k.replace("/", "_") + ".jpg")), im, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not cutouts.is_dir():
        cutouts.mkdir(parents=True)
        keys = photo_groups(STAMPS)
        valid = split(list(keys), 0.8, 0)[1]
        for k in random.Random(0).sample(valid, min(40, len(valid))):
            os.symlink(keys[k], cutouts / (k.replace("/", "_") + ".png"))
    return photos, cutouts


def validation_pairs(root: Path, n: int) -> dict[tuple[str, str], list]:
    cache = root / f"pairs-{n}.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    photos, cutouts = validation_folders(root)
    sources = {"photos": (open_source(cutouts, kind="cutouts", images=photos, seed=1), PHOTO_PROTOCOLS),
               "screens": (ScreenSource(screens_dir(16, 1)), SCREEN_PROTOCOLS)}
    out = {(name, p): [make_pair(src, i, protocol=p, seed=0) for i in range(min(n, len(src)))]
           for name, (src, protocols) in sources.items() for p in protocols}
    cache.write_bytes(pickle.dumps(out))
    return out


def evaluate(spec: dict, pairs: dict, only: set[str] | None = None) -> dict[str, float]:
    spec = dict(spec)
    matcher = tmatch.load_matcher(spec.pop("method"), **spec)
    scores, times = {}, []
    with limit_threads(1):
        for (name, protocol), items in pairs.items():
            key = f"{name[0]}:{protocol}"
            if only and key not in only:
                continue
            vals = []
            for pr in items:
                t0 = time.perf_counter()
                m = matcher.match(pr.template, pr.image)
                times.append(time.perf_counter() - t0)
                vals.append(geometry.iou(m.mask, np.asarray(pr.mask, bool)) if pr.present else float(not m.found))
            scores[key] = float(np.mean(vals))
    scores["median_ms"] = float(np.median(times) * 1000) if times else float("nan")
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default='{"method": "neural-local"}', help="JSON: method and its options")
    ap.add_argument("--n", type=int, default=30, help="pairs per protocol")
    ap.add_argument("--only", default="", help="comma-separated keys, e.g. s:screen,p:zoom-out")
    ap.add_argument("--out", type=Path, default=Path("runs/validation"))
    args = ap.parse_args()
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    only = {k for k in args.only.split(",") if k} or None
    scores = evaluate(json.loads(args.spec), validation_pairs(args.out, args.n), only)
    print(args.spec, " ".join(f"{k}={v:.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
