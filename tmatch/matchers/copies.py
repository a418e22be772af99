"""Pixel copies: a template that is a crop of the search image, as it is or resampled by a
device-scale ratio (a screenshot at 1x, 1.25x, 1.5x or 2x searched in another), found by
normalised cross-correlation (gain and bias invariant) however plain it is.

:func:`find_copy` searches the ratios between display scales at a reduced resolution (the
template's shorter side about ``COARSE_SIDE`` px), verifies the best candidates at full
resolution and says how well the best one agrees (its correlation) and how unique it is (the
margin over the best correlation elsewhere). A copy is what a keypoint or feature matcher can
miss (too small, too plain) and what correlation cannot miss: ``hybrid`` takes it before
anything else when it is unmistakable.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> img = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
>>> c = find_copy(img[30:70, 50:100], img)
>>> c.box, round(c.ncc, 3), c.ratio
((50, 30, 50, 40), 1.0, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from tmatch import geometry

#: display scales whose ratios are searched (a capture at one, searched in a capture at another).
DEVICE_SCALES = (1.0, 1.25, 1.5, 2.0)
#: template ratios (image px per template px): 1 and every ratio of two display scales.
RATIOS = tuple(sorted({round(b / a, 6) for a in DEVICE_SCALES for b in DEVICE_SCALES}))
#: image pyramid levels per octave.
LEVELS = 2
#: least template shorter side at the coarse search's resolution (levels of the image pyramid
#: are 2^(-k/LEVELS), shared by every ratio).
COARSE_SIDE = 24
#: coarse candidates verified at full resolution.
VERIFY = 3
#: least template grey-level standard deviation for a correlation to mean anything.
MIN_STD = 2.0


@dataclass
class Copy:
    """The best copy found.

    Attributes:
        box: ``(x, y, w, h)`` in image pixels.
        ratio: image px per template px.
        ncc: full-resolution correlation coefficient at ``box`` (1: an exact copy).
        margin: coarse correlation of the best minus the best elsewhere (another place, at any
            ratio): how unique the answer is.
    """

    box: tuple[int, int, int, int]
    ratio: float
    ncc: float
    margin: float

    def homography(self, template_hw: tuple[int, int]) -> np.ndarray:
        """Template → image map (edge coordinates) of the box."""
        x, y, w, h = self.box
        th, tw = template_hw
        return np.array([[w / tw, 0, x], [0, h / th, y], [0, 0, 1.0]])


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _resize(g: np.ndarray, w: int, h: int) -> np.ndarray:
    if (w, h) == (g.shape[1], g.shape[0]):
        return g
    shrink = w < g.shape[1]
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def copy_ratios(template_hw: tuple[int, int], image_hw: tuple[int, int]) -> tuple[float, ...]:
    """:data:`RATIOS`, and for a template larger than the image also the ratios from the one
    that fits down to a quarter of it (a zoomed-out view cropped around the object).

    >>> copy_ratios((10, 10), (100, 100)) == RATIOS
    True
    >>> min(copy_ratios((200, 200), (100, 100)))
    0.125
    """
    fit = min(image_hw[0] / template_hw[0], image_hw[1] / template_hw[1])
    if fit >= 1.0:
        return RATIOS
    return tuple(sorted(set(RATIOS) | {fit * 2.0 ** (-k / 4) for k in range(9)}))


def find_copy(template: np.ndarray, image: np.ndarray, ratios=RATIOS) -> Copy | None:
    """The best copy of the ``(h, w, 3)`` template in the ``(H, W, 3)`` image over ``ratios``
    (:func:`copy_ratios` gives those for any pair), or ``None`` when no ratio fits (template
    larger than the image) or the template is flat."""
    t, img = _gray(template), _gray(image)
    th, tw = t.shape
    H, W = img.shape
    if float(t.std()) < MIN_STD:
        return None
    coarse: list[tuple[float, float, int, int, float, tuple[int, int]]] = []
    second = -1.0  # the best coarse peak elsewhere, over every ratio
    maps = []
    levels: dict[int, np.ndarray] = {0: img}  # the image at 2^(-k/LEVELS), shared by the ratios
    for s in ratios:
        sw, sh = tw * s, th * s
        if sw > W or sh > H or min(sw, sh) < 4:
            continue
        # the coarsest level that keeps the template's shorter side at least COARSE_SIDE px
        k = max(0, math.floor(LEVELS * math.log2(min(sw, sh) / COARSE_SIDE))) if min(sw, sh) > COARSE_SIDE else 0
        d = 2.0 ** (-k / LEVELS)
        if k not in levels:
            levels[k] = _resize(img, max(1, round(W * d)), max(1, round(H * d)))
        Is = levels[k]
        ts = _resize(t, max(3, round(sw * d)), max(3, round(sh * d)))
        if Is.shape[0] < ts.shape[0] or Is.shape[1] < ts.shape[1] or float(ts.std()) < 1e-3:
            continue
        r = geometry.ncc_map(Is, ts)
        y, x = np.unravel_index(int(np.argmax(r)), r.shape)
        d = Is.shape[1] / W  # the exact factor of the whole-pixel level
        maps.append((s, d, r, ts.shape))
        coarse.append((float(r[y, x]), s, int(x), int(y), d, ts.shape))
    if not coarse:
        return None
    coarse.sort(key=lambda c: -c[0])
    # the strongest coarse peaks, and ratio 1 always (an exact copy may rank lower at the coarse
    # resolution than a look-alike at another ratio, never at full resolution)
    tried = coarse[:VERIFY] + [c for c in coarse[VERIFY:] if c[1] == 1.0]
    best_full: Copy | None = None
    for c1, s, x, y, d, _ in tried:
        sw, sh = max(3, round(tw * s)), max(3, round(th * s))
        ts = _resize(t, sw, sh)
        X, Y = x / d, y / d
        m = math.ceil(2.0 / d) + 2
        x0, y0 = max(0, math.floor(X - m)), max(0, math.floor(Y - m))
        x1, y1 = min(W, math.ceil(X + sw + m + 1)), min(H, math.ceil(Y + sh + m + 1))
        reg = img[y0:y1, x0:x1]
        if reg.shape[0] < sh or reg.shape[1] < sw:
            continue
        r = geometry.ncc_map(reg, ts)
        yy, xx = np.unravel_index(int(np.argmax(r)), r.shape)
        cand = Copy((x0 + int(xx), y0 + int(yy), sw, sh), float(s), float(r[yy, xx]), 0.0)
        if best_full is None or cand.ncc > best_full.ncc:
            best_full, best_coarse = cand, c1
    if best_full is None:
        return None
    # uniqueness: the strongest coarse peak whose place does not overlap the answer's
    bx, by, bw, bh = best_full.box
    for s, d, r, (ph, pw) in maps:
        r = r.copy()
        # top-left positions whose box centre lies inside the answer's box
        x0 = math.floor(bx * d - 0.5 * pw) - 1
        y0 = math.floor(by * d - 0.5 * ph) - 1
        x1 = math.ceil((bx + bw) * d - 0.5 * pw) + 1
        y1 = math.ceil((by + bh) * d - 0.5 * ph) + 1
        r[max(0, y0):max(0, y1 + 1), max(0, x0):max(0, x1 + 1)] = -1.0
        second = max(second, float(r.max()))
    best_full.margin = float(best_coarse - second)
    return best_full


def copy_instances(template: np.ndarray, image: np.ndarray, ratio: float, min_ncc: float,
                   max_instances: int) -> list[Copy]:
    """Every copy of ``template`` resampled by ``ratio`` in ``image`` whose full-resolution
    correlation is at least ``min_ncc`` (identical repeats of a UI element: all of them), best
    first, none overlapping a better one by more than half its box; at most ``max_instances``.
    Their ``margin`` is 0 (not measured)."""
    t, img = _gray(template), _gray(image)
    th, tw = t.shape
    sw, sh = max(3, round(tw * ratio)), max(3, round(th * ratio))
    if sw > img.shape[1] or sh > img.shape[0] or float(t.std()) < MIN_STD:
        return []
    r = geometry.ncc_map(img, _resize(t, sw, sh))
    out: list[Copy] = []
    while len(out) < max_instances:
        y, x = np.unravel_index(int(np.argmax(r)), r.shape)
        v = float(r[y, x])
        if v < min_ncc:
            break
        out.append(Copy((int(x), int(y), sw, sh), float(ratio), v, 0.0))
        # no other instance whose box centre lies within half a box of this one's
        r[max(0, y - sh // 2):y + sh // 2 + 1, max(0, x - sw // 2):x + sw // 2 + 1] = -1.0
    return out
