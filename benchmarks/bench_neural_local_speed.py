"""Speed of ``neural-local`` next to SIFT, with the time of each of its stages.

Five skimage photos resized to long side 640 px, the template a crop of a third × a quarter of
each; rounds alternate the two matchers on the same pairs so that load from other processes
weighs on both alike. Reports the median ``match`` time of each and, for ``neural-local``, the
median time of detection, patch sampling, description and verification on the search image.

    python benchmarks/bench_neural_local_speed.py --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import cv2
import numpy as np

PHOTOS = ("astronaut", "rocket", "coffee", "chelsea", "immunohistochemistry")


def pairs(size: int = 640) -> list[tuple[np.ndarray, np.ndarray]]:
    from skimage import data

    out = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        h, w = photo.shape[:2]
        s = size / max(h, w)
        img = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        H, W = img.shape[:2]
        out.append((img[H // 4: H // 4 + H // 3, W // 3: W // 3 + W // 4], img))
    return out


def stages(matcher, template: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """Milliseconds of each stage of one ``neural-local`` match (search image side)."""
    from tmatch.matchers.neural_local.describe import rectified_patches
    from tmatch.matchers.neural_local.detect import detect_fitted, gray

    t = [time.perf_counter()]
    prepared = matcher.prepare(template)
    t.append(time.perf_counter())
    work, kps, f = detect_fitted(gray(image), matcher.max_points, matcher.max_side, matcher.contrast,
                                 matcher.min_side)
    t.append(time.perf_counter())
    patches = rectified_patches(work, kps, matcher.magnify)
    t.append(time.perf_counter())
    desc = matcher.describer(patches)
    t.append(time.perf_counter())
    from tmatch.matchers.neural_local.matcher import LocalFeatures

    matcher.verify(prepared, LocalFeatures(kps.scaled(f), desc), template.shape[:2], image.shape[:2])
    t.append(time.perf_counter())
    names = ("template", "detect", "patches", "describe", "verify")
    return {n: (b - a) * 1000 for n, a, b in zip(names, t, t[1:])} | {"keypoints": len(kps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import tmatch
    from tmatch.threads import limit_threads

    nl = tmatch.load_matcher("neural-local", threads=a.threads)
    sift = tmatch.load_matcher("sift")
    cases = pairs()
    times: dict[str, list[float]] = {"neural-local": [], "sift": []}
    parts: list[dict] = []
    with limit_threads(a.threads):
        nl.match(*cases[0])  # warm-up
        for _ in range(a.rounds):
            for tpl, img in cases:
                times["neural-local"].append(nl.match(tpl, img).ms)
                times["sift"].append(sift.match(tpl, img).ms)
                parts.append(stages(nl, tpl, img))
    out = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = out["neural-local"] / out["sift"]
    out["stages"] = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
