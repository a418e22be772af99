"""Refinement and verification of the ``neural`` matcher.

Each template cell looks for its best match in a small window around where the current
transform puts it (sub-cell peak); a RANSAC similarity fitted to those correspondences replaces
the transform when well supported. The verification score is the mean cosine between the
template's stride-4 cells and the image exactly where the final transform puts them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tmatch import geometry
from tmatch.matchers.neural.render import Variant, cell_positions, unit


def refine_stage(hm: np.ndarray, v: Variant, r: np.ndarray, origin: tuple[float, float], level: int,
                 fimg: np.ndarray, mean: np.ndarray, template_hw: tuple[int, int], radius: int,
                 distinct: float, max_cells: int = 600) -> tuple[np.ndarray | None, float, float]:
    """One refinement at stride ``(2, 4, 8)[level]`` on unit features ``fimg`` ``(C, Hf, Wf)``
    of the image region whose top-left corner is ``origin`` (image px), resized by
    ``r = (rx, ry)``; cells whose best match stands out of their window by less than
    ``distinct`` are not used.

    Returns:
        ``(new homography or None, mean cosine of the cells' best matches, inlier share)``.
    """
    s = (2, 4, 8)[level]
    wgt = v.valid[level]
    ii, jj = np.nonzero(wgt >= 0.75)
    if len(ii) < 8:
        return None, 0.0, 0.0
    if len(ii) > max_cells:
        pick = np.linspace(0, len(ii) - 1, max_cells).round().astype(int)
        ii, jj = ii[pick], jj[pick]
    t = unit(v.feats[level], mean)[:, ii, jj]  # (C, N)
    tp, ip = cell_positions(v, s, ii, jj, hm, r, origin)
    ci, cj = np.round(ip[:, 1] / s).astype(int), np.round(ip[:, 0] / s).astype(int)
    _, Hf, Wf = fimg.shape
    P = radius
    fp = np.pad(fimg, ((0, 0), (P, P), (P, P)))
    ok = (ci >= -P + radius) & (ci < Hf + P - radius) & (cj >= -P + radius) & (cj < Wf + P - radius)
    ok &= (ci >= 0) & (ci < Hf) & (cj >= 0) & (cj < Wf)
    if ok.sum() < 8:
        return None, 0.0, 0.0
    t, tp, ci, cj = t[:, ok], tp[ok], ci[ok], cj[ok]
    d = np.arange(-radius, radius + 1)
    Y = ci[:, None, None] + P + d[None, :, None]
    X = cj[:, None, None] + P + d[None, None, :]
    win = fp[:, Y, X]  # (C, N, k, k)
    sim = np.einsum("cn,cnyx->nyx", t, win)
    k = 2 * radius + 1
    flat = sim.reshape(len(ci), -1)
    best = flat.argmax(axis=1)
    by, bx = best // k, best % k
    peak = flat[np.arange(len(ci)), best]
    dy = subcell(sim, by, bx, axis=1)
    dx = subcell(sim, by, bx, axis=2)
    iy = ci - radius + by + dy
    ix = cj - radius + bx + dx
    dst = np.stack([(ix * s + 0.5) / r[0] + origin[0], (iy * s + 0.5) / r[1] + origin[1]], axis=1)
    # Cells whose best match stands out of their window (not flat sky or a blank wall, whose
    # "best" match is arbitrary) and is a reasonable match at all.
    contrast = peak - np.median(flat, axis=1)
    good = (peak >= 0.3) & (contrast >= distinct)
    fine_cos = float(peak.mean())
    if good.sum() < 8:
        return None, fine_cos, 0.0
    A, inl = cv2.estimateAffinePartial2D(tp[good].astype(np.float32), dst[good].astype(np.float32),
                                         method=cv2.RANSAC, ransacReprojThreshold=0.75 * s / float(np.mean(r)),
                                         maxIters=500, refineIters=10)
    share = 0.0 if inl is None else float(inl.sum()) / len(ci)
    if A is None or inl.sum() < max(8, 0.3 * good.sum()):
        return None, fine_cos, share
    new = np.vstack([A, [0, 0, 1.0]])
    if not geometry.plausible_homography(new, template_hw, (10**6, 10**6)):
        return None, fine_cos, share
    return new, fine_cos, share


def verify(hm: np.ndarray, v: Variant, r: np.ndarray, origin: tuple[float, float],
           fimg: np.ndarray, mean: np.ndarray) -> float:
    """Mean cosine between the template's stride-4 cells and the image features ``fimg``
    ``(C, Hf, Wf)`` exactly where ``hm`` puts them (bilinear), cells falling outside counting
    0: how well the final geometry explains the image."""
    s = 4
    ii, jj = np.nonzero(v.valid[1] >= 0.75)
    if len(ii) == 0:
        return 0.0
    t = unit(v.feats[1], mean)[:, ii, jj]
    _, ip = cell_positions(v, s, ii, jj, hm, r, origin)
    fx, fy = ip[:, 0] / s, ip[:, 1] / s
    _, Hf, Wf = fimg.shape
    inside = (fx >= 0) & (fy >= 0) & (fx <= Wf - 1) & (fy <= Hf - 1)
    x0 = np.clip(np.floor(fx).astype(int), 0, max(0, Wf - 2))
    y0 = np.clip(np.floor(fy).astype(int), 0, max(0, Hf - 2))
    ax, ay = np.clip(fx - x0, 0, 1), np.clip(fy - y0, 0, 1)
    x1, y1 = np.minimum(x0 + 1, Wf - 1), np.minimum(y0 + 1, Hf - 1)
    f = (fimg[:, y0, x0] * ((1 - ax) * (1 - ay)) + fimg[:, y0, x1] * (ax * (1 - ay))
         + fimg[:, y1, x0] * ((1 - ax) * ay) + fimg[:, y1, x1] * (ax * ay))
    f = f / (np.linalg.norm(f, axis=0, keepdims=True) + 1e-6)
    cos = np.where(inside, (t * f).sum(axis=0), 0.0)
    return float(cos.mean())


def similarity_params(hm: np.ndarray) -> tuple[float, float]:
    """``(scale, angle in degrees)`` of the linear part of a (near-)similarity homography."""
    a, b = float(hm[0, 0] + hm[1, 1]) / 2.0, float(hm[1, 0] - hm[0, 1]) / 2.0
    return math.hypot(a, b) / max(float(hm[2, 2]), 1e-12), math.degrees(math.atan2(b, a))


def subcell(sim: np.ndarray, by: np.ndarray, bx: np.ndarray, axis: int) -> np.ndarray:
    """Parabolic sub-cell offset of each window's peak along ``axis`` (1: y, 2: x) of the
    ``(N, k, k)`` window scores ``sim``."""
    n, k = sim.shape[0], sim.shape[1]
    idx = np.arange(n)
    pos = by if axis == 1 else bx
    inner = (pos > 0) & (pos < k - 1)
    lo, hi = np.clip(pos - 1, 0, k - 1), np.clip(pos + 1, 0, k - 1)
    if axis == 1:
        c0, cm, cp = sim[idx, pos, bx], sim[idx, lo, bx], sim[idx, hi, bx]
    else:
        c0, cm, cp = sim[idx, by, pos], sim[idx, by, lo], sim[idx, by, hi]
    den = cm - 2 * c0 + cp
    off = np.where(den < 0, 0.5 * (cm - cp) / np.where(den < 0, den, -1.0), 0.0)
    return np.where(inner, np.clip(off, -0.5, 0.5), 0.0)
