"""The pair: a template, a search image and where the template is in it.

Every pair source (:mod:`tmatch.data.coco`, :mod:`tmatch.data.folder`,
:mod:`tmatch.data.cutouts`) yields :class:`Pair` objects from :meth:`PairSource.base`; the
protocols in :mod:`tmatch.data.protocols` transform them while keeping the ground truth exact.

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import DataError, InputError
from tmatch.io import read_image

log = logging.getLogger("tmatch.data")


@dataclass
class PairMeta:
    """Where a pair comes from.

    Attributes:
        source: ``"coco"``, ``"folder"``, ``"cutouts"`` or ``"samples"``.
        image_id: the search image's id in its source (COCO image id, or file index).
        image_name: file name of the search image's source photo.
        ann_id: the annotation id (COCO), or ``None``.
        label: category name (``""`` when unknown).
        box: template box ``(x, y, w, h)`` in the source photo (after downscaling).
        protocol: the protocol that made the pair (``"seed"``, ``"warp"``...).
        index: the pair's index in its source.
        target: ``"box"`` when the mask is the template's quadrilateral, ``"mask"`` when it is
            the object's own pixels (instance segmentation, cut-out alpha).
    """

    source: str
    image_id: int | str
    image_name: str
    ann_id: int | str | None
    label: str
    box: tuple[int, int, int, int]
    protocol: str = "seed"
    index: int = 0
    target: str = "box"


@dataclass
class Pair:
    """A template, a search image, and the ground truth of where the one is in the other.

    Attributes:
        template: ``(h, w, 3)`` uint8 RGB.
        image: ``(H, W, 3)`` uint8 RGB search image.
        mask: ``(H, W)`` bool, where the template is in ``image`` (all False if absent).
        polygon: ``(4, 2)`` template corners TL, TR, BR, BL in ``image`` coordinates, ``None``
            when absent.
        present: whether the template appears in the image.
        meta: provenance, see :class:`PairMeta`.
        template_mask: ``(h, w)`` bool object pixels in the template (segmentations, cut-outs),
            ``None`` when the whole template is the object.
        homography: ``(3, 3)`` map from template pixels to image pixels (tmatch convention),
            ``None`` when absent.

    >>> from tmatch.data import open_source
    >>> p = open_source(None).base(0)
    >>> p.template.shape[2], p.mask.shape == p.image.shape[:2], p.present
    (3, True, True)
    """

    template: np.ndarray
    image: np.ndarray
    mask: np.ndarray
    polygon: np.ndarray | None
    present: bool
    meta: PairMeta
    template_mask: np.ndarray | None = None
    homography: np.ndarray | None = None

    def copy(self, **changes) -> Pair:
        """A shallow copy with some fields replaced (arrays are not copied)."""
        return replace(self, **changes)


@dataclass
class Skips:
    """Counts of things a source skipped or converted, by reason, with a one-line summary."""

    source: str = ""
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    #: reasons that are choices, not faults (small boxes, crowd annotations): logged at INFO
    expected: set = field(default_factory=set)

    def add(self, reason: str, example: str = "", n: int = 1, expected: bool = False) -> None:
        self.counts[reason] += n
        if example and reason not in self.examples:
            self.examples[reason] = str(example)
        if expected:
            self.expected.add(reason)

    @property
    def faults(self) -> int:
        """How many skips were bad data (not expected choices)."""
        return int(sum(n for r, n in self.counts.items() if r not in self.expected))

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def summary(self) -> str:
        """``"coco: skipped 3 (2 zero-size box, 1 missing image file e.g. a.jpg)"`` or ``""``."""
        if not self.counts:
            return ""
        parts = []
        for reason, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            ex = self.examples.get(reason)
            parts.append(f"{n} {reason}" + (f" e.g. {ex}" if ex else ""))
        return f"{self.source}: skipped {self.total} ({', '.join(parts)})"

    def log(self) -> None:
        """Write the summary as one line: a warning when bad data was skipped, else at INFO."""
        if self.counts:
            log.log(logging.WARNING if self.faults else logging.INFO, self.summary())


class PairSource:
    """Base class of pair sources: indexed seed pairs from photos.

    Subclasses implement :meth:`__len__`, :meth:`base` and :meth:`image_key`. Pair ``i`` is a
    pure function of the source's files and options, so a run can be sharded or resumed.

    Attributes:
        name: ``"coco"``, ``"folder"``, ``"cutouts"`` or ``"samples"``.
        max_side: search images with a longer side are downscaled to it (0: never).
        min_query_hw: the smallest template side kept.
        skipped: what was skipped while indexing and while loading, see :class:`Skips`.
    """

    name: str = "source"

    def __init__(self, max_side: int = 640, min_query_hw: int = 32, cache_images: int = 8) -> None:
        if max_side and max_side < 2 * min_query_hw:
            raise DataError(f"max_side ({max_side}) must be at least twice min_query_hw ({min_query_hw})")
        self.max_side = int(max_side or 0)
        self.min_query_hw = int(min_query_hw)
        self.skipped = Skips(self.name)
        self._bad_images: set[str] = set()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_images)

    # -- the interface -------------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def base(self, i: int) -> Pair:
        """The seed pair ``i``: an exact crop and the unchanged (downscaled) image."""
        raise NotImplementedError

    def image_key(self, i: int) -> str:
        """A string naming the source photo of pair ``i`` (for splits and negatives)."""
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------------
    def image_keys(self) -> list[str]:
        """``image_key(i)`` for every pair (subclasses may answer faster)."""
        return [self.image_key(i) for i in range(len(self))]

    def check_index(self, i: int) -> int:
        n = len(self)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"pair index {i} out of range for {self.name} source of {n} pairs")
        return i % n

    def scale_for(self, width: int, height: int) -> float:
        """The downscaling factor applied to a ``width`` × ``height`` photo (<= 1)."""
        longest = max(int(width), int(height))
        if self.max_side and longest > self.max_side:
            return self.max_side / longest
        return 1.0

    def load_image(self, path: str | Path) -> np.ndarray:
        """Read a photo as ``(H, W, 3)`` RGB, downscaled to ``max_side``; raise
        :class:`InputError` when it cannot be read (the caller decides to skip it)."""
        key = str(path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            if key in self._bad_images:
                raise InputError(f"unreadable image: {path}")
            img = read_image(path)
        except InputError as e:
            e.path = key  # type: ignore[attr-defined]
            raise
        img = self.downscale(img)
        if self._cache_size > 0:
            self._cache[key] = img
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return img

    def downscale(self, img: np.ndarray) -> np.ndarray:
        """Shrink an ``(H, W, C)`` image so its longest side is at most ``max_side``."""
        h, w = img.shape[:2]
        s = self.scale_for(w, h)
        if s >= 1.0:
            return img
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA))

    def skip_image(self, path: str | Path, reason: str = "unreadable image") -> None:
        """Record an image that failed to load (logged once, counted in :attr:`skipped`)."""
        key = str(path)
        if key in self._bad_images:
            return
        first = reason not in self.skipped.counts
        self._bad_images.add(key)
        self.skipped.add(reason, Path(key).name)
        if first:
            log.warning("%s: skipping %s %s (further ones are counted in .skipped)",
                        self.name, reason, key)

    def first_good(self, i: int, load) -> Pair:
        """``load(i)``, or when that photo cannot be read, ``load`` of the next readable pair
        (wrapping around); raises :class:`DataError` when no pair can be loaded at all."""
        n = len(self)
        i = self.check_index(i)
        for k in range(n):
            j = (i + k) % n
            try:
                return load(j)
            except InputError as e:
                self.skip_image(getattr(e, "path", None) or f"{self.image_key(j)}[{j}]", _reason(e))
        raise DataError(f"{self.name}: none of the {n} pairs could be loaded; {self.skipped.summary()}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} pairs, max_side={self.max_side})"


def _reason(e: Exception) -> str:
    if getattr(e, "reason", None):
        return str(e.reason)  # type: ignore[attr-defined]
    msg = str(e)
    if "not found" in msg:
        return "missing image file"
    if "outside" in msg:
        return "box outside image"
    return "unreadable image"


def crop_pair(image: np.ndarray, box: tuple[int, int, int, int], meta: PairMeta,
              mask: np.ndarray | None = None) -> Pair:
    """The seed pair of an exact crop.

    Args:
        image: ``(H, W, 3)`` uint8 search image.
        box: integer ``(x, y, w, h)`` inside the image.
        meta: provenance (its ``box`` and ``target`` are set here).
        mask: optional ``(H, W)`` bool object mask (segmentation); the target is then the
            object's pixels and ``template_mask`` its crop. Otherwise the target is the box.

    Returns:
        The :class:`Pair`, with ``homography`` the translation to ``(x, y)``.
    """
    x, y, w, h = (int(v) for v in box)
    H, W = image.shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > W or y + h > H:
        raise InputError(f"box ({x},{y},{w},{h}) lies outside the {W}x{H} image")
    poly = geometry.rect_polygon(x, y, w, h)
    hm = np.array([[1.0, 0, x], [0, 1.0, y], [0, 0, 1.0]])
    template = np.ascontiguousarray(image[y:y + h, x:x + w])
    if mask is None or not mask[y:y + h, x:x + w].any():
        target_mask = np.zeros((H, W), bool)
        target_mask[y:y + h, x:x + w] = True
        tmask = None
        meta = replace(meta, box=(x, y, w, h), target="box")
    else:
        target_mask = np.asarray(mask, bool)
        tmask = np.ascontiguousarray(target_mask[y:y + h, x:x + w])
        meta = replace(meta, box=(x, y, w, h), target="mask")
    return Pair(template=template, image=image, mask=target_mask, polygon=poly, present=True,
                meta=meta, template_mask=tmask, homography=hm)


def scaled_box(box, s: float, image_hw: tuple[int, int], sy: float | None = None
               ) -> tuple[int, int, int, int]:
    """Scale a float ``(x, y, w, h)`` box by ``s`` (``sy`` vertically when given) and round its
    edges to whole pixels, clipped to ``image_hw = (H, W)``.

    >>> scaled_box((10.4, 20, 30.2, 41), 0.5, (100, 100))
    (5, 10, 15, 20)
    """
    x, y, w, h = (float(v) for v in box)
    sy = s if sy is None else sy
    H, W = image_hw
    x0 = int(np.clip(round(x * s), 0, W))
    y0 = int(np.clip(round(y * sy), 0, H))
    x1 = int(np.clip(round((x + w) * s), 0, W))
    y1 = int(np.clip(round((y + h) * sy), 0, H))
    return x0, y0, x1 - x0, y1 - y0
