"""A search region: where in the image a template is looked for (pyautogui's ``region=``).

``region = (x, y, w, h)`` in image pixels. The part of it inside the image is searched and the
answer comes back in the whole image's coordinates (box, polygon, homography, a full-size
mask). A region partly outside the image is clipped to it; one that misses the image entirely
is an :class:`~tmatch.errors.InputError`.

>>> import numpy as np
>>> clip_region((-5, 10, 50, 50), (40, 30))
(0, 10, 30, 30)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.match import Match

#: ``(x, y, w, h)`` in image pixels.
Region = tuple[int, int, int, int]


def parse_region(text: str, what: str = "region") -> Region:
    """``"x,y,w,h"`` → four ints (``InputError`` when malformed; the ROI's parser).

    >>> parse_region("10, 20, 30, 40")
    (10, 20, 30, 40)
    """
    from tmatch.io import parse_roi

    return parse_roi(text, what)


def clip_region(region: Any, image_hw: tuple[int, int], what: str = "region") -> Region:
    """``region`` checked (four finite integers, positive width and height) and clipped to the
    ``(H, W)`` image.

    Raises:
        InputError: a malformed region, or one with no pixel inside the image.
    """
    try:
        vals = [float(v) for v in region]
        if len(vals) != 4 or not all(math.isfinite(v) and v == int(v) for v in vals):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"{what} must be (x, y, w, h), four integers, got {region!r}") from None
    x, y, w, h = (int(v) for v in vals)
    if w <= 0 or h <= 0:
        raise InputError(f"{what} has zero area: {w}x{h} at ({x},{y})")
    H, W = int(image_hw[0]), int(image_hw[1])
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"{what} ({x},{y},{w},{h}) lies outside the {W}x{H} image")
    return x0, y0, x1 - x0, y1 - y0


def crop_region(image: np.ndarray, region: Any, what: str = "region") -> tuple[np.ndarray, Region]:
    """The part of ``image`` inside ``region`` and that part as a clipped ``(x, y, w, h)``."""
    x, y, w, h = clip_region(region, image.shape[:2], what)
    return np.ascontiguousarray(image[y:y + h, x:x + w]), (x, y, w, h)


def shift_match(m: Match, offset: tuple[int, int], image_hw: tuple[int, int]) -> Match:
    """A match found in a crop at ``offset = (x0, y0)``, expressed in the full ``(H, W)`` image.

    The crop's mask is pasted in place, except when a homography's polygon reaches past the
    crop: then the mask is redrawn from the shifted polygon.
    """
    x0, y0 = int(offset[0]), int(offset[1])
    H, W = int(image_hw[0]), int(image_hw[1])
    if not m.found:
        return Match.absent((H, W), score=m.score, method=m.method, **m.extra)
    t = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    poly = None if m.polygon is None else np.asarray(m.polygon, np.float64) + [x0, y0]
    hm = None if m.homography is None else t @ np.asarray(m.homography, np.float64)
    ch, cw = m.mask.shape
    inside = m.polygon is not None and np.all(np.asarray(m.polygon) >= 0) \
        and np.all(np.asarray(m.polygon) <= [cw, ch])
    if poly is not None and hm is not None and not inside:
        # The polygon reaches past the crop: its mask there was clipped, draw it again.
        mask = geometry.mask_from_polygon(poly, (H, W))
        box = geometry.box_from_polygon(poly, (H, W))
    else:
        mask = np.zeros((H, W), bool)
        mask[y0:y0 + ch, x0:x0 + cw] = m.mask[:H - y0, :W - x0]
        box = None if m.box is None else (m.box[0] + x0, m.box[1] + y0, m.box[2], m.box[3])
    return Match(found=True, score=m.score, polygon=poly, box=box, mask=mask, homography=hm,
                 ms=m.ms, method=m.method, extra=dict(m.extra))


def searched_part(image: np.ndarray, region: Any) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """``(what is searched, its offset in the image, the image's (H, W))`` for a ``region``
    (``None``: the whole image)."""
    if region is None:
        return image, (0, 0), image.shape[:2]
    crop, (x, y, _, _) = crop_region(image, region)
    return crop, (x, y), image.shape[:2]


def in_image_pixels(m: Match, offset: tuple[int, int], image_hw: tuple[int, int]) -> Match:
    """A result found in the part :func:`searched_part` gave, in the whole image's coordinates
    (unchanged when the part was the whole image)."""
    if offset == (0, 0) and tuple(m.mask.shape) == tuple(image_hw):
        return m
    return shift_match(m, offset, image_hw)
