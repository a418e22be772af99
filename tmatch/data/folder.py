"""Pairs from a plain folder of photos (no annotations): random boxes with enough texture.

A box is well posed when it has texture (gradients, contrast) and does not repeat elsewhere in
the photo (its normalised cross-correlation elsewhere stays below ``max_repeat``): a patch of
sky or a brick of a wall would have no single right answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from tmatch import geometry
from tmatch.data.pairs import Pair, PairMeta, PairSource, crop_pair
from tmatch.errors import DataError, InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root`` (recursively), sorted by relative path."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    return sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: p.relative_to(root).as_posix())


def texture_score(gray: np.ndarray) -> float:
    """How much texture an ``(h, w)`` float32 gray patch (0–255) has: the mean gradient
    magnitude times the share of pixels with a clear gradient (0 for a flat patch)."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.sqrt(gx * gx + gy * gy)[1:-1, 1:-1]
    if mag.size == 0:
        return 0.0
    return float(mag.mean() * (mag > 4.0).mean())


def repeat_score(gray: np.ndarray, box: tuple[int, int, int, int], factor: int = 4) -> float:
    """Best normalised cross-correlation of the box's patch with the photo away from the box
    (at ``1/factor`` resolution): near 1 when the patch repeats elsewhere."""
    x, y, w, h = box
    small = cv2.resize(gray, (max(1, gray.shape[1] // factor), max(1, gray.shape[0] // factor)),
                       interpolation=cv2.INTER_AREA)
    tw, th = max(3, w // factor), max(3, h // factor)
    tpl = cv2.resize(gray[y:y + h, x:x + w], (tw, th), interpolation=cv2.INTER_AREA)
    if small.shape[0] <= th or small.shape[1] <= tw or tpl.std() < 1e-3:
        return 1.0 if tpl.std() < 1e-3 else 0.0
    r = geometry.ncc_map(small, tpl)  # a flat band is no repeat
    cx, cy = x // factor, y // factor
    rx, ry = max(1, tw // 2), max(1, th // 2)
    r[max(0, cy - ry):cy + ry + 1, max(0, cx - rx):cx + rx + 1] = -1.0
    return float(r.max())


class FolderSource(PairSource):
    """Pairs from a folder of photos: ``pairs_per_image`` random well-posed boxes per photo.

    Pair ``i`` is box ``i % pairs_per_image`` of photo ``i // pairs_per_image``; the box depends
    only on ``(seed, i)`` and the photo.

    Args:
        root: the folder (searched recursively for jpg/png/bmp/tif/webp).
        pairs_per_image: boxes per photo.
        max_side: photos with a longer side are downscaled to it.
        min_query_hw: smallest box side.
        size: box side range as a share of the photo's shorter side.
        min_texture: smallest :func:`texture_score` accepted (boxes must also be at least as
            textured as the median candidate box of their photo).
        max_repeat: largest :func:`repeat_score` accepted.
        seed: the boxes' seed.

    >>> from tmatch.data import samples
    >>> src = FolderSource(samples.sample_dir() / "images", pairs_per_image=2)
    >>> p = src.base(1)
    >>> p.meta.source, min(p.template.shape[:2]) >= 32
    ('folder', True)
    """

    name = "folder"

    def __init__(self, root: str | os.PathLike, *, pairs_per_image: int = 4, max_side: int = 640,
                 min_query_hw: int = 32, size: tuple[float, float] = (0.15, 0.45),
                 min_texture: float = 0.5, max_repeat: float = 0.9, seed: int = 0,
                 tries: int = 24, cache_images: int = 8) -> None:
        super().__init__(max_side=max_side, min_query_hw=min_query_hw, cache_images=cache_images)
        self.root = Path(root)
        self.files = list_images(self.root)
        if not self.files:
            raise DataError(f"no images (jpg, png, bmp, tif, webp) under {self.root}")
        if pairs_per_image < 1:
            raise DataError(f"pairs_per_image must be >= 1, got {pairs_per_image}")
        self.pairs_per_image = int(pairs_per_image)
        self.size = (float(size[0]), float(size[1]))
        self.min_texture = float(min_texture)
        self.max_repeat = float(max_repeat)
        self.seed = int(seed)
        self.tries = int(tries)
        self._names = [p.relative_to(self.root).as_posix() for p in self.files]

    def __len__(self) -> int:
        return len(self.files) * self.pairs_per_image

    def image_key(self, i: int) -> str:
        return self._names[i // self.pairs_per_image]

    def base(self, i: int) -> Pair:
        return self.first_good(i, self._load)

    def _load(self, i: int) -> Pair:
        k = i // self.pairs_per_image
        img = self.load_image(self.files[k])
        H, W = img.shape[:2]
        if min(H, W) < 2 * self.min_query_hw:
            err = InputError(f"image {self._names[k]} ({W}x{H}) is too small for {self.min_query_hw} px boxes")
            err.path, err.reason = str(self.files[k]), "image too small"  # type: ignore[attr-defined]
            raise err
        box = self.choose_box(img, np.random.default_rng([self.seed, i]))
        meta = PairMeta(source=self.name, image_id=k, image_name=self._names[k], ann_id=None,
                        label="", box=box, index=i)
        return crop_pair(img, box, meta)

    def choose_box(self, img: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """A random textured, non-repeating box ``(x, y, w, h)`` in an ``(H, W, 3)`` photo
        (the most textured candidate when none passes both tests)."""
        H, W = img.shape[:2]
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        short = min(H, W)
        lo = max(self.min_query_hw, int(self.size[0] * short))
        hi = max(lo, int(self.size[1] * short))
        cands = []
        for _ in range(self.tries):
            side = rng.uniform(lo, hi)
            aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
            w = int(np.clip(round(side * np.sqrt(aspect)), self.min_query_hw, W))
            h = int(np.clip(round(side / np.sqrt(aspect)), self.min_query_hw, H))
            x = int(rng.integers(0, W - w + 1))
            y = int(rng.integers(0, H - h + 1))
            cands.append(((x, y, w, h), texture_score(gray[y:y + h, x:x + w])))
        # Well posed: among the more textured half of this photo's candidates, and at least
        # min_texture (dark, low-contrast photos keep their relatively textured spots).
        thr = max(self.min_texture, float(np.median([c[1] for c in cands])))
        textured = [c for c in cands if c[1] >= thr]
        for box, _ in textured[:6]:
            if repeat_score(gray, box) <= self.max_repeat:
                return box
        return max(cands, key=lambda c: c[1])[0]
