"""Stage 3 of ``neural-local``: mutual nearest neighbours, ratio test, robust homography.

Descriptors are unit vectors, so nearest neighbours come from one matrix product. A pair is
kept when each is the other's nearest neighbour and the best distance is below ``ratio`` times
the second best. MAGSAC++ (OpenCV's ``USAC_MAGSAC``) fits the template→image homography; the
result carries the statistics the presence head reads.

>>> import numpy as np
>>> d = np.eye(4, dtype=np.float32)
>>> mutual_matches(d, d, ratio=0.9).tolist()
[[0, 0], [1, 1], [2, 2], [3, 3]]
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tmatch import geometry
from tmatch.matchers.features import SEED


@dataclass
class Verified:
    """A fitted homography and the evidence behind it.

    Attributes:
        homography: ``(3, 3)`` template→image (our convention), or ``None``.
        matches: mutual ratio-test matches tried.
        inliers: matches the homography explains.
        inlier_distance: mean descriptor distance of the inliers (2.0 when none).
        spread: area of the inliers' convex hull in the template / the template's area.
        plausible: the homography passes :func:`tmatch.geometry.plausible_homography`.
    """

    homography: np.ndarray | None
    matches: int
    inliers: int
    inlier_distance: float
    spread: float
    plausible: bool

    def stats(self) -> np.ndarray:
        """``(5,)`` features for the presence head."""
        ratio = self.inliers / max(1, self.matches)
        return np.array([np.log1p(self.inliers), ratio, self.inlier_distance, self.spread,
                         float(self.plausible)], np.float64)


def mutual_matches(query: np.ndarray, train: np.ndarray, ratio: float = 0.9) -> np.ndarray:
    """``(M, 2)`` index pairs (query, train) that are mutual nearest neighbours passing the ratio test.

    Args:
        query: ``(N, D)`` unit descriptors; train: ``(K, D)`` unit descriptors.
    """
    if len(query) == 0 or len(train) == 0:
        return np.zeros((0, 2), int)
    sim = query @ train.T
    d2 = np.maximum(2.0 - 2.0 * sim, 0.0)
    nn12 = np.argmin(d2, axis=1)
    nn21 = np.argmin(d2, axis=0)
    qi = np.arange(len(query))
    mutual = nn21[nn12] == qi
    if train.shape[0] >= 2:
        part = np.partition(d2, 1, axis=1)[:, :2]
        good = np.sqrt(part[:, 0]) < ratio * np.sqrt(part[:, 1])
    else:
        good = np.ones(len(query), bool)
    keep = mutual & good
    return np.stack([qi[keep], nn12[keep]], axis=1)


#: below this many homography inliers a similarity (rotation, scale, shift) is tried as well.
FEW = 8


def _similarity(src: np.ndarray, dst: np.ndarray, threshold: float) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC similarity ``src`` → ``dst`` as a 3×3 (OpenCV convention) and its inlier mask.
    OpenCV's RNG is seeded first: the answer never depends on what ran before."""
    cv2.setRNGSeed(SEED)
    a, inl = cv2.estimateAffinePartial2D(src.reshape(-1, 1, 2).astype(np.float64),
                                         dst.reshape(-1, 1, 2).astype(np.float64), method=cv2.RANSAC,
                                         ransacReprojThreshold=float(threshold), maxIters=2000,
                                         confidence=0.999)
    if a is None or not np.isfinite(a).all():
        return None, np.zeros(len(src), bool)
    return np.vstack([a, [0.0, 0.0, 1.0]]), inl.ravel().astype(bool)


def fit(src: np.ndarray, dst: np.ndarray, distances: np.ndarray, template_hw: tuple[int, int],
        image_hw: tuple[int, int], threshold: float = 4.0) -> Verified:
    """Fit a homography to ``src`` ``(M, 2)`` → ``dst`` ``(M, 2)`` with MAGSAC++.

    Args:
        distances: ``(M,)`` descriptor distances of the matches.
        threshold: reprojection threshold, pixels of the image.
    """
    m = len(src)
    if m < 4:
        return Verified(None, m, 0, 2.0, 0.0, False)
    hm_cv, inl = cv2.findHomography(src.reshape(-1, 1, 2).astype(np.float64),
                                    dst.reshape(-1, 1, 2).astype(np.float64), cv2.USAC_MAGSAC,
                                    float(threshold), maxIters=2000, confidence=0.999)
    if hm_cv is None or not np.isfinite(hm_cv).all():
        return Verified(None, m, 0, 2.0, 0.0, False)
    inl = inl.ravel().astype(bool)
    if inl.sum() < FEW:  # a similarity explains few matches more stably than 8 free parameters
        sim, sim_inl = _similarity(src, dst, threshold)
        if sim is not None and sim_inl.sum() >= max(3, inl.sum()):
            hm_cv, inl = sim, sim_inl
    n_in = int(inl.sum())
    hm = geometry.from_cv_homography(hm_cv)
    th, tw = template_hw
    spread = 0.0
    if n_in >= 3:
        hull = cv2.convexHull(src[inl].astype(np.float32))
        spread = float(cv2.contourArea(hull)) / max(1.0, th * tw)
    dist = float(distances[inl].mean()) if n_in else 2.0
    ok = geometry.plausible_homography(hm, template_hw, image_hw, min_scale=0.05, max_scale=20.0)
    return Verified(hm, m, n_in, dist, min(spread, 1.0), ok)
