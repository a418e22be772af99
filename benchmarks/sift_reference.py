"""An independent, plain implementation of the original experiment's SIFT pipeline (the OpenCV
tutorial code it followed), used to check that ``tmatch.load_matcher("sift")`` reproduces it.

Run as a script to compare both on held-out photos (default: OpenCV's sample images, which we
never train or tune on):

    python benchmarks/sift_reference.py [FOLDER] [--pairs N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def reference_sift_mask(template_rgb: np.ndarray, image_rgb: np.ndarray) -> np.ndarray:
    """The original pipeline, written out plainly: returns the (H, W) bool mask (empty if none)."""
    q = cv2.cvtColor(template_rgb, cv2.COLOR_RGB2GRAY)
    im = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create()
    kp1, des1 = sift.detectAndCompute(q, None)
    kp2, des2 = sift.detectAndCompute(im, None)
    out = np.zeros(im.shape, np.uint8)
    if des1 is None or des2 is None or len(kp2) < 2:
        return out.astype(bool)
    flann = cv2.FlannBasedMatcher(dict(algorithm=1, trees=5), dict(checks=50))
    matches = flann.knnMatch(des1, des2, k=2)
    good = [m for m, n in (p for p in matches if len(p) == 2) if m.distance < 0.75 * n.distance]
    if len(good) < 4:
        return out.astype(bool)
    src = np.float32([kp1[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
    dst = np.float32([kp2[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
    M, _ = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
    if M is None:
        return out.astype(bool)
    h, w = q.shape
    pts = np.float32([[0, 0], [0, h - 1], [w - 1, h - 1], [w - 1, 0]]).reshape(-1, 1, 2)
    poly = cv2.perspectiveTransform(pts, M)
    cv2.fillPoly(out, [np.int32(poly)], 1)
    return out.astype(bool)


def make_case(photo: np.ndarray, rng: np.random.Generator):
    """A crop of ``photo`` and a warped copy of the photo with its true mask."""
    from tmatch import geometry

    H, W = photo.shape[:2]
    w, h = int(rng.integers(W // 6, W // 3)), int(rng.integers(H // 6, H // 3))
    x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
    tpl = photo[y:y + h, x:x + w].copy()
    # Warp the whole photo about the crop's centre: scale 0.8-1.25, ±20°, mild perspective.
    local = geometry.random_homography(rng, (h, w), (H, W), scale=(0.8, 1.25), rotation=20,
                                       perspective=0.0004, center=(x + w / 2, y + h / 2))
    to_tpl = np.array([[1, 0, -x], [0, 1, -y], [0, 0, 1.0]])
    hm_img = local @ to_tpl  # image -> warped image
    scene = geometry.warp_image(photo, hm_img, (H, W), border=cv2.BORDER_REFLECT101)
    truth = geometry.mask_from_polygon(geometry.template_polygon(local, (h, w)), (H, W))
    return tpl, scene, truth


def compare(photos: list[np.ndarray], pairs_per_photo: int = 4, seed: int = 0):
    """Mean IoU of tmatch's sift and of the reference on the same cases."""
    import tmatch
    from tmatch import geometry

    rng = np.random.default_rng(seed)
    ours, ref = [], []
    m = tmatch.load_matcher("sift")
    for photo in photos:
        for _ in range(pairs_per_photo):
            tpl, scene, truth = make_case(photo, rng)
            ours.append(geometry.iou(m.match(tpl, scene).mask, truth))
            ref.append(geometry.iou(reference_sift_mask(tpl, scene), truth))
    return float(np.mean(ours)), float(np.mean(ref)), len(ours)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default="/usr/share/doc/opencv-doc/examples/data")
    ap.add_argument("--pairs", type=int, default=4, help="cases per photo")
    ap.add_argument("--max-side", type=int, default=640)
    args = ap.parse_args(argv)
    from tmatch.io import read_image

    files = sorted(p for p in Path(args.folder).glob("*") if p.suffix.lower() in (".jpg", ".png"))
    photos = []
    for p in files:
        try:
            im = read_image(p)
        except Exception:
            continue
        if min(im.shape[:2]) < 200:
            continue
        s = args.max_side / max(im.shape[:2])
        if s < 1:
            im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        photos.append(im)
    if not photos:
        print(f"no photos in {args.folder}", file=sys.stderr)
        return 2
    o, r, n = compare(photos, args.pairs)
    print(f"{len(photos)} photos, {n} cases: tmatch sift mean IoU {o:.4f}, reference {r:.4f}, "
          f"difference {abs(o - r):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
