"""Coarse search of the ``neural`` matcher: every template variant correlated with the search
image's stride-8 features; the peaks give similarity transforms to refine."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tmatch.matchers.neural.render import Encoded, Variant, edge_map, unit


@dataclass
class CoarseResult:
    """The coarse search of one image.

    Attributes:
        r: network px per image px.
        enc: the template variants at that factor.
        scores: ``(V, h8, w8)`` mean cosine of every variant at every stride-8 cell.
        best_v: ``(h8, w8)`` best variant per cell.
        best: ``(h8, w8)`` best score per cell.
        med: median of ``best``.
        spread: standard deviation of ``best`` (plus a small constant).
    """

    r: float
    enc: Encoded
    scores: np.ndarray
    best_v: np.ndarray
    best: np.ndarray
    med: float
    spread: float

    @classmethod
    def of(cls, r: float, enc: Encoded, scores: np.ndarray) -> CoarseResult:
        best = scores.max(axis=0)
        return cls(r, enc, scores, scores.argmax(axis=0), best, float(np.median(best)), float(best.std()) + 1e-6)


def coarse_scores(enc: Encoded, f8: np.ndarray, mean8: np.ndarray, projection: np.ndarray | None,
                  threads: int | None) -> np.ndarray:
    """Scores ``(V, h8, w8)``: mean cosine of every variant at every stride-8 position of the
    unit features ``f8`` ``(D, h8, w8)`` (the canvas centre lands on the cell's centre)."""
    from tmatch.models.features import correlate

    by_side: dict[int, list[int]] = {}
    for i, v in enumerate(enc.variants):
        by_side.setdefault(v.side, []).append(i)
    scores = np.zeros((len(enc.variants),) + f8.shape[1:], np.float32)
    for idx in by_side.values():
        ks = []
        for i in idx:
            v = enc.variants[i]
            wgt = np.where(v.valid[2] >= 0.5, v.valid[2], 0.0).astype(np.float32)
            k = unit(v.feats[2], mean8, projection) * wgt[None]
            ks.append(k / max(float(wgt.sum()), 1e-6))
        scores[idx] = correlate(f8, np.stack(ks), threads)
    return scores


def similarity(v: Variant, r: float, cy: float, cx: float) -> np.ndarray:
    """Template → image homography of variant ``v`` whose canvas has its top-left cell at
    stride-8 cell ``(cy, cx)`` (fractional)."""
    n = v.side // 8
    lo = n // 2
    # canvas centre-coords origin ↔ image-net centre-coords 8 * (cell - lo)
    ox, oy = 8.0 * (cx - lo), 8.0 * (cy - lo)
    A = np.vstack([v.affine, [0, 0, 1]])
    T = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1.0]])
    return edge_map(T @ A, r)


def subcell1(line: np.ndarray, i: int) -> float:
    """Parabolic sub-cell offset of the peak at ``i`` of a 1-D score ``line``."""
    if 0 < i < len(line) - 1:
        cm, c0, cp = float(line[i - 1]), float(line[i]), float(line[i + 1])
        den = cm - 2 * c0 + cp
        if den < 0:
            return float(np.clip(0.5 * (cm - cp) / den, -0.5, 0.5))
    return 0.0


def peaks(score: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The ``n`` strongest local maxima (3×3) of ``score``, strongest first."""
    if n <= 1:
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        return [(int(y), int(x))]
    dil = cv2.dilate(score.astype(np.float32), np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(score >= dil)
    order = np.argsort(-score[ys, xs])[:n]
    return [(int(ys[i]), int(xs[i])) for i in order]
