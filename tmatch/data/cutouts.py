"""Cut-out composites: RGBA objects pasted onto photos give pairs with true object masks.

Any folder of RGBA PNGs works (e.g. the ~800 tuxpaint stamps); backgrounds are a folder of
photos, or scikit-image's photos when none is given. Pair ``i`` pastes object
``i // pairs_per_object`` at a random size and place (from ``(seed, i)``) onto a random
background; the template is the exact crop of the object's box in the composite, the target mask
the object's own pixels (alpha >= 0.5), ``template_mask`` the same pixels in the template.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from tmatch.data.folder import list_images
from tmatch.data.pairs import Pair, PairMeta, PairSource, crop_pair
from tmatch.errors import DataError, InputError
from tmatch.io import as_rgb

#: scikit-image photos used as backgrounds when none are given (all ship with the package).
DEFAULT_BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "coins",
                       "immunohistochemistry", "hubble_deep_field", "brick", "grass", "gravel", "moon")


def skimage_backgrounds() -> list[np.ndarray]:
    """The photos of :data:`DEFAULT_BACKGROUNDS` as ``(H, W, 3)`` uint8 RGB."""
    from skimage import data as skdata

    return [as_rgb(getattr(skdata, n)()) for n in DEFAULT_BACKGROUNDS]


def read_rgba(path: str | os.PathLike) -> np.ndarray:
    """An RGBA ``(h, w, 4)`` uint8 cut-out; raise :class:`InputError` when it has no alpha or
    no opaque pixels."""
    path = Path(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if arr is None:
        raise InputError(f"cannot read cut-out {path}")
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise InputError(f"cut-out {path.name} has no alpha channel")
    if arr.dtype == np.uint16:
        arr = (arr // 257).astype(np.uint8)
    return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)


def trim(rgba: np.ndarray, min_alpha: int = 128) -> np.ndarray:
    """Crop an ``(h, w, 4)`` cut-out to the box of its opaque pixels."""
    ys, xs = np.nonzero(rgba[:, :, 3] >= min_alpha)
    if len(xs) == 0:
        raise InputError("cut-out has no opaque pixels")
    return rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def paste(background: np.ndarray, rgba: np.ndarray, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend an ``(h, w, 4)`` cut-out onto a copy of an ``(H, W, 3)`` background at
    ``(x, y)`` (inside it). Returns the composite and the ``(H, W)`` object mask."""
    h, w = rgba.shape[:2]
    out = background.copy()
    a = rgba[:, :, 3:4].astype(np.float32) / 255.0
    region = out[y:y + h, x:x + w].astype(np.float32)
    out[y:y + h, x:x + w] = np.clip(rgba[:, :, :3] * a + region * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    mask = np.zeros(background.shape[:2], bool)
    mask[y:y + h, x:x + w] = rgba[:, :, 3] >= 128
    return out, mask


class CutoutSource(PairSource):
    """Composites of RGBA cut-outs on photos.

    Args:
        objects: a folder of RGBA PNGs (searched recursively), or a list of ``(h, w, 4)`` arrays.
        backgrounds: a folder of photos, a list of ``(H, W, 3)`` arrays, or ``None`` for
            scikit-image's photos.
        pairs_per_object: pairs made from each cut-out (different size, place, background).
        max_side: backgrounds with a longer side are downscaled to it.
        min_query_hw: the pasted object's box is at least this on both sides.
        object_size: the object's longer side as a share of the background's shorter side.
        seed: the composites' seed.

    >>> import numpy as np
    >>> obj = np.zeros((60, 40, 4), np.uint8); obj[10:50, 5:35] = 200
    >>> p = CutoutSource([obj, obj]).base(0)
    >>> p.meta.target, p.template_mask.shape == p.template.shape[:2]
    ('mask', True)
    """

    name = "cutouts"

    def __init__(self, objects: str | os.PathLike | Sequence[np.ndarray],
                 backgrounds: str | os.PathLike | Sequence[np.ndarray] | None = None, *,
                 pairs_per_object: int = 1, max_side: int = 640, min_query_hw: int = 32,
                 object_size: tuple[float, float] = (0.25, 0.55), seed: int = 0,
                 cache_images: int = 16) -> None:
        super().__init__(max_side=max_side, min_query_hw=min_query_hw, cache_images=cache_images)
        if isinstance(objects, (str, os.PathLike)):
            root = Path(objects)
            if not root.is_dir():
                raise DataError(f"cut-out folder not found: {root}")
            self.objects: list = sorted(root.rglob("*.png"), key=lambda p: p.relative_to(root).as_posix())
            self._obj_names = [p.relative_to(root).as_posix() for p in self.objects]
        else:
            self.objects = [np.asarray(o) for o in objects]
            for k, o in enumerate(self.objects):
                if o.ndim != 3 or o.shape[2] != 4:
                    raise DataError(f"cut-out {k} must be an (h, w, 4) RGBA array, got {o.shape}")
            self._obj_names = [f"object{k:04d}" for k in range(len(self.objects))]
        if not self.objects:
            raise DataError(f"no RGBA cut-outs (*.png) in {objects}")
        if backgrounds is None:
            self.backgrounds: list = [self.downscale(b) for b in skimage_backgrounds()]
            self._bg_names = [f"skimage:{n}" for n in DEFAULT_BACKGROUNDS]
        elif isinstance(backgrounds, (str, os.PathLike)):
            self.backgrounds = list_images(backgrounds)
            self._bg_names = [p.relative_to(Path(backgrounds)).as_posix() for p in self.backgrounds]
        else:
            self.backgrounds = [self.downscale(as_rgb(b, "background")) for b in backgrounds]
            self._bg_names = [f"background{k:04d}" for k in range(len(self.backgrounds))]
        if not self.backgrounds:
            raise DataError(f"no background photos in {backgrounds}")
        if pairs_per_object < 1:
            raise DataError(f"pairs_per_object must be >= 1, got {pairs_per_object}")
        self.pairs_per_object = int(pairs_per_object)
        self.object_size = (float(object_size[0]), float(object_size[1]))
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.objects) * self.pairs_per_object

    def image_key(self, i: int) -> str:
        """The cut-out's name: splits and negatives keep objects apart."""
        return self._obj_names[i // self.pairs_per_object]

    def base(self, i: int) -> Pair:
        return self.first_good(i, self._load)

    def _object(self, k: int) -> np.ndarray:
        obj = self.objects[k]
        if isinstance(obj, np.ndarray):
            return trim(obj)
        key = f"object:{obj}"
        if key in self._cache:
            return self._cache[key]
        try:
            if key in self._bad_images:
                raise InputError(f"unreadable cut-out {obj}")
            rgba = trim(read_rgba(obj))
        except InputError as e:
            e.path, e.reason = key, "unusable cut-out"  # type: ignore[attr-defined]
            raise
        self._cache[key] = rgba
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return rgba

    def _background(self, b: int) -> np.ndarray:
        bg = self.backgrounds[b]
        return bg if isinstance(bg, np.ndarray) else self.load_image(bg)

    def _load(self, i: int) -> Pair:
        rng = np.random.default_rng([self.seed, i])
        k = i // self.pairs_per_object
        b = int(rng.integers(len(self.backgrounds)))
        rgba = self._object(k)
        bg = self._background(b)
        H, W = bg.shape[:2]
        oh, ow = rgba.shape[:2]
        longest = rng.uniform(*self.object_size) * min(H, W)
        s = longest / max(oh, ow)
        s = max(s, self.min_query_hw / min(oh, ow))  # keep both sides >= min_query_hw
        w, h = max(1, round(ow * s)), max(1, round(oh * s))
        if w > W or h > H:
            err = InputError(f"cut-out {self._obj_names[k]} ({ow}x{oh}) is too elongated for a "
                             f"{self.min_query_hw} px box in a {W}x{H} background")
            err.path = f"object:{self.objects[k]}"  # type: ignore[attr-defined]
            err.reason = "cut-out too elongated"  # type: ignore[attr-defined]
            raise err
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        obj = cv2.resize(rgba, (w, h), interpolation=interp)
        x = int(rng.integers(0, W - w + 1))
        y = int(rng.integers(0, H - h + 1))
        image, mask = paste(bg, obj, x, y)
        meta = PairMeta(source=self.name, image_id=b, image_name=self._bg_names[b], ann_id=k,
                        label=Path(self._obj_names[k]).stem, box=(x, y, w, h), index=i)
        return crop_pair(image, (x, y, w, h), meta, mask=mask)
