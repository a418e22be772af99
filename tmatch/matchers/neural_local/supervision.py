"""Training targets for the descriptor: which keypoints of two views are the same point.

Given keypoints detected in view A and view B and the known homography from A to B, a pair is
a correspondence when B's keypoint lies where A's projects, with the size and orientation the
homography predicts there (its local linear part). Using the *detected* frames in both views
(rather than projecting A's frame) teaches the descriptor the detector's own position, scale
and orientation errors — what it meets at matching time.

>>> import numpy as np
>>> from tmatch.matchers.neural_local.detect import Keypoints
>>> a = Keypoints(np.array([[10.0, 10.0]]), np.array([4.0]), np.array([0.0]), np.array([1.0]))
>>> b = Keypoints(np.array([[20.0, 20.0]]), np.array([8.0]), np.array([0.0]), np.array([1.0]))
>>> correspondences(a, b, np.diag([2.0, 2.0, 1.0])).tolist()
[[0, 0]]
"""

from __future__ import annotations

import numpy as np

from tmatch import geometry
from tmatch.matchers.neural_local.detect import Keypoints


def local_frames(hm: np.ndarray, kps: Keypoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``hm`` (pixel-centre coordinates) sends each keypoint: points ``(N, 2)``, sizes
    ``(N,)`` and angles ``(N,)`` degrees, from the homography's Jacobian at each point."""
    p = kps.points
    q = geometry.project(hm, p)
    eps = 0.5
    qx = geometry.project(hm, p + [eps, 0.0])
    qy = geometry.project(hm, p + [0.0, eps])
    jx, jy = (qx - q) / eps, (qy - q) / eps  # columns of the Jacobian, (N, 2) each
    det = np.abs(jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0])
    a = np.deg2rad(kps.angles)
    d = jx * np.cos(a)[:, None] + jy * np.sin(a)[:, None]
    angles = np.rad2deg(np.arctan2(d[:, 1], d[:, 0])) % 360.0
    return q, kps.sizes * np.sqrt(det), angles


def correspondences(a: Keypoints, b: Keypoints, hm: np.ndarray, position: float = 0.25,
                    scale: float = 1.6, angle: float = 25.0) -> np.ndarray:
    """``(M, 2)`` index pairs (A, B) of keypoints that are the same point under ``hm`` (A→B).

    Args:
        position: largest distance between B's keypoint and A's projection, as a share of the
            predicted size (at least 1.5 px).
        scale: largest ratio between B's size and the predicted one (either way).
        angle: largest difference between B's orientation and the predicted one, degrees.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 2), int)
    q, size, ang = local_frames(hm, a)
    d = np.linalg.norm(q[:, None, :] - b.points[None, :, :], axis=2)  # (Na, Nb)
    tol = np.maximum(1.5, position * size)[:, None]
    ok = d <= tol
    ok &= np.abs(np.log(b.sizes[None, :] / np.maximum(size[:, None], 1e-6))) <= np.log(scale)
    diff = np.abs((b.angles[None, :] - ang[:, None] + 180.0) % 360.0 - 180.0)
    ok &= diff <= angle
    d = np.where(ok, d, np.inf)
    best_b = np.argmin(d, axis=1)
    has = np.isfinite(d[np.arange(len(a)), best_b])
    pairs = np.stack([np.nonzero(has)[0], best_b[has]], axis=1)
    # one A keypoint per B keypoint: keep the closest
    order = np.argsort(d[pairs[:, 0], pairs[:, 1]], kind="stable")
    _, first = np.unique(pairs[order, 1], return_index=True)
    return pairs[order[np.sort(first)]]
