"""Rendering and encoding for the ``neural`` matcher: the template on canvases at a scale and
angles, the search image resized, both turned into unit feature vectors.

Coordinates: *edge* coordinates put pixel ``(0, 0)``'s corner at the origin (the project's
homography convention); *centre* coordinates put its centre there (OpenCV's warps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from tmatch import geometry

#: a feature extractor: ``(B, 3, H, W)`` float32 → ``[f2, f4, f8]`` (:class:`~tmatch.models.features.Lite0Features`).
Features = Callable[[np.ndarray], list]


@dataclass
class Variant:
    """The template rendered at one scale and angle, encoded."""

    scale: float
    angle: float
    side: int  # canvas side, network px (multiple of 8)
    affine: np.ndarray  # (2, 3) template centre-coords -> canvas centre-coords
    feats: list[np.ndarray]  # raw canvas features at strides 2, 4, 8: (C, side/s, side/s)
    valid: list[np.ndarray]  # share of each cell inside the template, per stride


@dataclass
class Encoded:
    """Every variant of the coarse grid for one resize factor ``r`` (network px per image px)."""

    r: float
    variants: list[Variant]


@dataclass
class ImageFeatures:
    """Unit features of a (region of the) search image.

    Attributes:
        units: ``[(C, H/s, W/s)]`` at strides 2, 4, 8: centred by ``means``, unit length.
        means: ``[(C, 1, 1)]`` channel means the features were centred by.
        rxy: ``(2,)`` exact resize factors ``(rx, ry)`` (sizes are whole pixels).
    """

    units: list[np.ndarray]
    means: list[np.ndarray]
    rxy: np.ndarray


def unit(f: np.ndarray, mean: np.ndarray, proj: np.ndarray | None = None) -> np.ndarray:
    """Centre ``(C, h, w)`` features by ``mean`` ``(C, 1, 1)``, project by ``proj`` ``(D, C)``
    when given, and scale each vector to unit length."""
    g = f - mean
    if proj is not None:
        g = np.einsum("dc,chw->dhw", proj, g)
    return g / (np.sqrt((g * g).sum(axis=0, keepdims=True)) + 1e-6)


def render(features: Features, template: np.ndarray, r: float, scale: float,
           angles: Sequence[float]) -> list[Variant]:
    """The ``(h, w, 3)`` template at ``scale`` and each of ``angles`` on square canvases
    (network factor ``r``), encoded in one batch."""
    from tmatch.models.features import normalize

    h, w = template.shape[:2]
    ones = np.ones((h, w), np.float32)
    f = r * scale
    # A canvas holding the rotated template (its bounding box at the largest angle), on
    # whole stride-8 cells.
    amax = max(min(abs(a) % 180.0, 180.0 - abs(a) % 180.0) for a in angles)
    ca, sa = abs(math.cos(math.radians(amax))), abs(math.sin(math.radians(amax)))
    ext = max(w * ca + h * sa, w * sa + h * ca) if amax <= 45 else math.hypot(h, w)
    side = max(16, math.ceil((ext * f + 8) / 8.0) * 8)
    canvases, group = [], []
    for a in angles:
        A = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), -a, f)
        A[:, 2] += (side - 1) / 2.0 - np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        can = cv2.warpAffine(template, A, (side, side), flags=interp, borderMode=cv2.BORDER_REFLECT101)
        val = cv2.warpAffine(ones, A, (side, side), flags=cv2.INTER_LINEAR)
        canvases.append(normalize(can))
        group.append((a, A, val))
    feats = features(np.stack(canvases))
    out = []
    for k, (a, A, val) in enumerate(group):
        valid = [cv2.resize(val, (side // s, side // s), interpolation=cv2.INTER_AREA) for s in (2, 4, 8)]
        out.append(Variant(scale, a, side, A, [fm[k] for fm in feats], valid))
    return out


def image_features(features: Features, image: np.ndarray, r: float,
                   projection: np.ndarray | None = None) -> ImageFeatures:
    """Unit features of the ``(H, W, 3)`` image resized by ``r``; ``projection`` ``(D, 40)``
    applies to the stride-8 features."""
    from tmatch.models.features import normalize

    H, W = image.shape[:2]
    nw, nh = max(8, round(W * r)), max(8, round(H * r))
    interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
    im = cv2.resize(image, (nw, nh), interpolation=interp) if (nw, nh) != (W, H) else image
    feats = [f[0] for f in features(normalize(im)[None])]
    means = [f.mean(axis=(1, 2), keepdims=True) for f in feats]
    units = [unit(f, m, projection if i == 2 else None) for i, (f, m) in enumerate(zip(feats, means))]
    return ImageFeatures(units, means, np.array([nw / W, nh / H]))


def cell_positions(v: Variant, s: int, ii: np.ndarray, jj: np.ndarray, hm: np.ndarray, r: np.ndarray,
                   origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where the stride-``s`` canvas cells ``(ii, jj)`` of variant ``v`` are: ``(template edge
    coords (N, 2), centre coords in the network frame of the region at ``origin`` resized by
    ``r = (rx, ry)`` where ``hm`` puts them (N, 2))``."""
    a_inv = cv2.invertAffineTransform(v.affine)
    pts = np.stack([jj * s, ii * s], axis=1).astype(np.float64)  # canvas cell centres (centre coords)
    tp = pts @ a_inv[:, :2].T + a_inv[:, 2] + 0.5
    ip = (geometry.project(hm, tp) - np.asarray(origin)) * r - 0.5
    return tp, ip


def edge_map(A_centre_net: np.ndarray, r: float) -> np.ndarray:
    """A template centre-coords → image-net centre-coords map as a template edge-coords → image
    edge-coords homography (image px = net px / r)."""
    to_c = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])
    from_net = np.array([[1 / r, 0, 0.5 / r], [0, 1 / r, 0.5 / r], [0, 0, 1.0]])
    return from_net @ A_centre_net @ to_c
