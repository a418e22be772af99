"""Peak memory of every matcher on a 12000×9000 image, and whether the answer is still right.

The search image is built from scikit-image photos (tiled, each piece resized and flipped so the
texture does not repeat exactly) with a template — a photo the tiles do not use, enlarged —
pasted at a known place. Each matcher runs in a fresh process (``tmatch.load_matcher(name)
.match(template, image)``); the child reports its peak resident set size (``ru_maxrss``), the
time, and the IoU of the reported mask with the true one. The image alone takes about
0.3 GB of the peak (0.65 GB with the grey copy and the result's mask).

Usage::

    .venv/bin/python benchmarks/bench_memory.py                      # every matcher
    .venv/bin/python benchmarks/bench_memory.py --methods sift,akaze --size 12000x9000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_memory import scene
import tmatch
from tmatch import geometry
W, H = {size}
image, template, truth = scene(W, H, {template_side})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
m = tmatch.load_matcher({name!r}, **{options!r})
t0 = time.perf_counter()
r = m.match(template, image)
sec = time.perf_counter() - t0
iou = geometry.iou(r.mask, geometry.mask_from_polygon(truth, (H, W))) if r.found else 0.0
print(json.dumps(dict(method={name!r}, found=bool(r.found), iou=round(float(iou), 4), seconds=round(sec, 1),
                      scene_mb=round(base), peak_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))))
"""

METHODS = ("ncc", "sift", "orb", "akaze", "neural", "neural-seg", "dual-unet", "hybrid")
OPTIONS = {"dual-unet": {"allow_untrained": True}}


def scene(width: int, height: int, template_side: int = 1500, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image (H, W, 3), template (h, w, 3), true polygon (4, 2))``: a textured image tiled
    from scikit-image photos with an enlarged photo pasted at a known place (scale 1)."""
    import cv2
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.coffee(), data.rocket(), data.immunohistochemistry()]
    image = np.empty((height, width, 3), np.uint8)
    tile = 900
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            p = photos[rng.integers(len(photos))]
            side = int(rng.integers(tile, 2 * tile))
            piece = cv2.resize(p, (side, side * p.shape[0] // p.shape[1] + 1))
            if rng.random() < 0.5:
                piece = piece[:, ::-1]
            piece = piece[:tile, :tile]
            h, w = min(tile, height - y, piece.shape[0]), min(tile, width - x, piece.shape[1])
            image[y:y + h, x:x + w] = piece[:h, :w]
    cat = data.chelsea()
    s = template_side / max(cat.shape[:2])
    template = cv2.resize(cat, (round(cat.shape[1] * s), round(cat.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
    th, tw = template.shape[:2]
    x0, y0 = int(width * 0.55), int(height * 0.5)
    image[y0:y0 + th, x0:x0 + tw] = template
    truth = np.array([[x0, y0], [x0 + tw, y0], [x0 + tw, y0 + th], [x0, y0 + th]], np.float64)
    return image, np.ascontiguousarray(template), truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--size", default="12000x9000", help="WxH of the search image")
    ap.add_argument("--template-side", type=int, default=1500, help="the template's longer side, px")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    print("| method | found | IoU | seconds | scene MB | peak MB |\n|---|---|---|---|---|---|")
    for name in args.methods.split(","):
        code = CHILD.format(root=root, size=(w, h), template_side=args.template_side, name=name,
                            options=OPTIONS.get(name, {}))
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"| {name} | error (exit {res.returncode}): {res.stderr.strip().splitlines()[-1:]} | | | | |")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['found']} | {r['iou']:.3f} | {r['seconds']} | {r['scene_mb']} | {r['peak_mb']} |",
              flush=True)


if __name__ == "__main__":
    main()
