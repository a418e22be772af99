"""How long opening a COCO val2017-sized annotation file takes (target: < 5 s).

Generates an instances file shaped like COCO val2017 — 5,000 images, 36,000 annotations with
polygon segmentations, 80 categories, ~1% crowd — (no images needed: ``check_files=False``),
then times ``CocoSource`` indexing it: JSON parsing, validation, the min_query_hw filter and
pycocotools' index. The original searched the image list once per annotation (quadratic); that
lookup is timed too on a sample of annotations and extrapolated, for comparison.

Usage::

    .venv/bin/python benchmarks/bench_coco_index.py
    .venv/bin/python benchmarks/bench_coco_index.py --images 5000 --annotations 36000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_coco(n_images: int, n_anns: int, seed: int = 0) -> dict:
    """A COCO-shaped dict: photo sizes, box sizes and polygon lengths roughly like val2017."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(1, n_images + 1):
        w, h = (640, int(rng.integers(360, 640))) if rng.uniform() < 0.7 else (int(rng.integers(360, 640)), 640)
        images.append({"id": int(k * 7 + 100000), "file_name": f"{k:012d}.jpg", "width": w, "height": h,
                       "license": 1, "coco_url": "", "date_captured": "", "flickr_url": ""})
    anns = []
    img_idx = rng.integers(0, n_images, n_anns)
    for k in range(n_anns):
        im = images[int(img_idx[k])]
        W, H = im["width"], im["height"]
        # COCO boxes are mostly small: log-uniform side between 4 and 600 px
        bw = float(min(W - 1, np.exp(rng.uniform(np.log(4), np.log(600)))))
        bh = float(min(H - 1, bw * np.exp(rng.uniform(-0.7, 0.7))))
        x = float(rng.uniform(0, W - bw))
        y = float(rng.uniform(0, H - bh))
        n = int(rng.integers(6, 40))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        px = x + bw / 2 + np.cos(t) * bw / 2
        py = y + bh / 2 + np.sin(t) * bh / 2
        seg = np.round(np.stack([px, py], 1).ravel(), 2).tolist()
        anns.append({"id": 900000 + k, "image_id": im["id"], "category_id": int(rng.integers(1, 81)),
                     "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                     "area": round(bw * bh * 0.7, 2), "iscrowd": int(rng.uniform() < 0.01),
                     "segmentation": [seg]})
    cats = [{"id": k, "name": f"category{k}", "supercategory": "thing"} for k in range(1, 81)]
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}


def original_lookup_seconds(data: dict, sample: int = 300) -> float:
    """The original's per-annotation linear search of the image list, extrapolated."""
    anns = data["annotations"][:sample]
    t0 = time.perf_counter()
    for ann in anns:
        next((img for img in data["images"] if img["id"] == ann["image_id"]), None)
    return (time.perf_counter() - t0) / len(anns) * len(data["annotations"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--annotations", type=int, default=36000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from tmatch.data import CocoSource

    data = synthetic_coco(args.images, args.annotations)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "instances_val2017.json"
        path.write_text(json.dumps(data))
        size_mb = path.stat().st_size / 1e6
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            src = CocoSource(path, images=Path(d), check_files=False)
            times.append(time.perf_counter() - t0)
    print(f"annotation file: {args.images} images, {args.annotations} annotations, {size_mb:.1f} MB")
    print(f"indexed: {len(src)} pairs kept (box >= {src.min_query_hw} px); {src.skipped.summary()}")
    print(f"CocoSource index time: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s over {args.repeat} runs (target < 5 s)")
    print(f"the original's linear image search alone (extrapolated): {original_lookup_seconds(data):.1f} s")


if __name__ == "__main__":
    main()
