"""Local-feature matchers: SIFT (the original experiment's pipeline, exactly), ORB and AKAZE.

The pipeline: detect and describe keypoints on grayscale; match template descriptors to image
descriptors with k=2 nearest neighbours; keep matches passing Lowe's ratio test; fit a
homography with RANSAC; warp the template rectangle by it. Every number is an option whose
default is the original's (SIFT) or OpenCV's usual choice (ORB, AKAZE).

Score: ``inliers / (inliers + 10)`` — 0 for nothing, 0.5 at ten RANSAC inliers, towards 1 for
many. ``extra`` holds the raw counts under public keys: ``good_matches`` (matches passing the
ratio test) and ``inliers`` (RANSAC inliers; :meth:`FeatureMatcher.inliers` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tmatch import geometry
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.options import Option, with_defaults, work_options


@dataclass
class _Features:
    """Keypoints ``(N, 2)`` (pixel-centre coordinates) and descriptors ``(N, D)`` of one image."""

    points: np.ndarray
    descriptors: np.ndarray | None


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


#: the seed of every randomised step (FLANN's kd-trees, RANSAC), set before each call so that
#: an answer never depends on how many matches ran before it.
SEED = 0


def _seed() -> None:
    """Seed OpenCV's RNG and the C library's (FLANN draws from both) for the next call."""
    cv2.setRNGSeed(SEED)
    if _LIBC is not None:
        _LIBC.srand(SEED)


def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None


_LIBC = _libc()


def _score(inliers: int) -> float:
    return inliers / (inliers + 10.0)


#: images thinner than this have no keypoints (and OpenCV's detectors are not asked: AKAZE
#: aborts the process on a picture one pixel high).
_MIN_DETECT_SIDE = 4


class FeatureMatcher(Matcher):
    """Shared keypoint + ratio test + RANSAC pipeline; subclasses choose the detector and norm.

    Args:
        ratio: Lowe's ratio test threshold.
        min_matches: fewest good matches needed to try a homography.
        ransac_threshold: RANSAC reprojection threshold in pixels.
        min_inliers: fewest RANSAC inliers for ``found=True``.
        check_geometry: reject degenerate homographies (twisted quads, absurd scales).
    """

    multi_instance = True
    # Keypoints carry their own scale: a template larger than the image is shrunk only as far
    # as it must be to fit (shrinking further loses the fine keypoints; measured on photos and
    # on rendered screens, docs/robustness-matchers.md).
    fit_share = 1.0
    binary = False  # Hamming-distance descriptors

    OPTIONS = (
        Option("ratio", float, 0.75, "Lowe's ratio test threshold", low=0.0, high=1.0),
        Option("min_matches", int, 4, "fewest good matches needed to try a homography", low=0, high=10**6),
        Option("ransac_threshold", float, 5.0, "RANSAC reprojection threshold, pixels", low=0.0, high=1000.0),
        Option("min_inliers", int, 4, "fewest RANSAC inliers for found=True", low=0, high=10**6),
        Option("check_geometry", bool, False, "reject implausible homographies (mirrored, beyond 10x scale)"),
        *work_options(4096),
    )

    @staticmethod
    def inliers(match: Match) -> int:
        """RANSAC inliers behind a result of a feature matcher (0 when none were counted)."""
        return int(match.extra.get("inliers", 0))

    # --- subclass hooks
    def _detector(self, image_hw: tuple[int, int] = (0, 0)) -> Any:
        """The keypoint detector for an image of size ``(H, W)``."""
        raise NotImplementedError

    def _matcher(self) -> Any:
        return cv2.BFMatcher(cv2.NORM_HAMMING if self.binary else cv2.NORM_L2)

    # --- shared steps
    def _features(self, rgb: np.ndarray, region: np.ndarray | None = None) -> _Features:
        """Keypoints of an RGB image; ``region`` ``(H, W)`` bool limits where they are detected
        (detection runs on the region's bounding box only). Without a region, an image's
        features are computed once per :meth:`_image_scope` (several templates share them)."""
        if region is None:
            return self._memo("features", rgb, None, lambda: self._detect(rgb, None))
        ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
        if len(ys) == 0:
            return _Features(np.zeros((0, 2)), None)
        y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
        f = self._detect(np.ascontiguousarray(rgb[y0:y1, x0:x1]), region[y0:y1, x0:x1])
        return _Features(f.points + np.array([x0, y0], np.float64), f.descriptors)

    def _detect(self, rgb: np.ndarray, region: np.ndarray | None) -> _Features:
        if min(rgb.shape[:2]) < _MIN_DETECT_SIDE:  # AKAZE corrupts the heap on 1-px-high input
            return _Features(np.zeros((0, 2)), None)
        mask = None if region is None else region.astype(np.uint8) * 255
        _seed()
        kps, des = self._detector(rgb.shape[:2]).detectAndCompute(_gray(rgb), mask)
        pts = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
        return _Features(pts, des)

    def prepare(self, template: np.ndarray) -> _Features:
        return self._features(template)

    def _good_matches(self, query: _Features, train: _Features) -> list[tuple[int, int]]:
        """(query index, train index) pairs passing the ratio test, query→train knn k=2."""
        if query.descriptors is None or train.descriptors is None:
            return []
        if len(query.points) < 1 or len(train.points) < 2:
            return []
        _seed()
        knn = self._matcher().knnMatch(query.descriptors, train.descriptors, k=2)
        good = []
        for pair in knn:
            if len(pair) == 2 and pair[0].distance < self.ratio * pair[1].distance:
                good.append((pair[0].queryIdx, pair[0].trainIdx))
        return good

    def _fit(self, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        if len(src) < max(4, self.min_matches):
            return None, np.zeros(len(src), bool)
        _seed()
        hm, inl = cv2.findHomography(src.reshape(-1, 1, 2), dst.reshape(-1, 1, 2), cv2.RANSAC,
                                     self.ransac_threshold)
        if hm is None:
            return None, np.zeros(len(src), bool)
        return hm, inl.ravel().astype(bool)

    def _result(self, hm_cv: np.ndarray | None, inliers: np.ndarray, n_good: int,
                template_hw: tuple[int, int], image_hw: tuple[int, int]) -> Match:
        n_in = int(inliers.sum())
        extra = {"good_matches": n_good, "inliers": n_in}
        if hm_cv is None or n_in < self.min_inliers or not np.isfinite(hm_cv).all():
            return Match.absent(image_hw, score=_score(n_in) if hm_cv is not None else 0.0,
                                method=self.name, **extra)
        hm = geometry.from_cv_homography(hm_cv)
        if self.check_geometry and not geometry.plausible_homography(hm, template_hw, image_hw):
            return Match.absent(image_hw, score=0.0, method=self.name, rejected="geometry", **extra)
        return self._from_homography(hm, template_hw, image_hw, _score(n_in), **extra)

    def _match(self, prepared: _Features, template: np.ndarray, image: np.ndarray) -> Match:
        return self.match_in_region(prepared, template, image, None)

    def match_in_region(self, prepared: _Features, template: np.ndarray, image: np.ndarray,
                        region: np.ndarray | None) -> Match:
        """Match with image keypoints restricted to ``region`` ``(H, W)`` bool (all when None)."""
        feats = self._features(image, region)
        good = self._good_matches(prepared, feats)
        src = np.array([prepared.points[q] for q, _ in good], np.float64).reshape(-1, 2)
        dst = np.array([feats.points[t] for _, t in good], np.float64).reshape(-1, 2)
        hm, inl = self._fit(src, dst)
        return self._result(hm, inl, len(good), template.shape[:2], image.shape[:2])

    def _match_all(self, prepared: _Features, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        """RANSAC again on the matches left after removing each instance's inliers.

        Matching runs image→template here: with several copies in the image, a template
        keypoint's two nearest image neighbours are often two copies of itself, which the
        ratio test would throw away.
        """
        feats = self._features(image)
        pairs = [(t, q) for q, t in self._good_matches(feats, prepared)]
        src = np.array([prepared.points[t] for t, _ in pairs], np.float64).reshape(-1, 2)
        dst = np.array([feats.points[q] for _, q in pairs], np.float64).reshape(-1, 2)
        results: list[Match] = []
        th, tw = template.shape[:2]
        for _ in range(max_instances * 3):
            if len(results) >= max_instances:
                break
            hm, inl = self._fit(src, dst)
            if hm is None or inl.sum() < max(self.min_inliers, 4):
                break
            m = self._result(hm, inl, len(src), (th, tw), image.shape[:2])
            # Remove the inliers and every match that lands inside this instance.
            inside = np.zeros(len(dst), bool)
            if m.found:
                poly = m.polygon
                inside = np.array([cv2.pointPolygonTest(poly.astype(np.float32),
                                                        (float(x + 0.5), float(y + 0.5)), False) >= 0
                                   for x, y in dst], bool)
            keep = ~(inl | inside)
            src, dst = src[keep], dst[keep]
            if m.found and geometry.plausible_homography(m.homography, (th, tw), image.shape[:2]) \
                    and (min_score is None or m.score >= min_score):
                results.append(m)
        keep_idx = geometry.nms([m.polygon for m in results], [m.score for m in results], 0.3)
        return [results[i] for i in keep_idx]


class SIFTMatcher(FeatureMatcher):
    """The original experiment's SIFT pipeline: grayscale SIFT, FLANN kd-tree (5 trees,
    50 checks), knn k=2 template→image, ratio 0.75, >= 4 good matches, RANSAC 5.0 px.

    >>> m = SIFTMatcher()
    >>> (m.ratio, m.min_matches, m.ransac_threshold, m.trees, m.checks)
    (0.75, 4, 5.0, 5, 50)
    """

    name = "sift"
    description = "SIFT + FLANN + ratio 0.75 + RANSAC homography (the original experiment's baseline)"

    # SIFT's scale space at 2560 px takes about 1.2 GB; at 4096 px about 3 GB.
    OPTIONS = with_defaults(FeatureMatcher.OPTIONS, work_side=2560) + (
        Option("trees", int, 5, "FLANN kd-trees", low=1, high=64),
        Option("checks", int, 50, "FLANN checks", low=1, high=100000),
        Option("nfeatures", int, 0, "keypoints kept (0: all)", low=0, high=10**6),
    )

    def _detector(self, image_hw: tuple[int, int] = (0, 0)) -> Any:
        return cv2.SIFT_create(nfeatures=self.nfeatures)

    def _matcher(self) -> Any:
        return cv2.FlannBasedMatcher(dict(algorithm=1, trees=self.trees), dict(checks=self.checks))


class ORBMatcher(FeatureMatcher):
    """ORB (oriented FAST + rotated BRIEF) with brute-force Hamming matching: the fastest."""

    name = "orb"
    description = "ORB binary features + Hamming ratio test + RANSAC homography (fast)"
    binary = True

    OPTIONS = with_defaults(FeatureMatcher.OPTIONS, ratio=0.8, min_matches=8, min_inliers=8,
                            check_geometry=True) + (
        Option("nfeatures", int, 2000, "keypoints detected per quarter megapixel (at least this many)", low=1,
               high=10**6),
    )

    def _detector(self, image_hw: tuple[int, int] = (0, 0)) -> Any:
        # A fixed count spreads thin over a large image: the template's part of it gets too few.
        quarters = image_hw[0] * image_hw[1] / 250_000
        return cv2.ORB_create(nfeatures=int(self.nfeatures * max(1.0, quarters)))


class AKAZEMatcher(FeatureMatcher):
    """AKAZE (nonlinear scale space, binary M-LDB descriptors) with Hamming matching."""

    name = "akaze"
    description = "AKAZE binary features + Hamming ratio test + RANSAC homography"
    binary = True

    OPTIONS = with_defaults(FeatureMatcher.OPTIONS, ratio=0.8, min_matches=6, min_inliers=6,
                            check_geometry=True) + (
        Option("threshold", float, 0.0005, "AKAZE detector response threshold", low=0.0),
    )

    def _detector(self, image_hw: tuple[int, int] = (0, 0)) -> Any:
        return cv2.AKAZE_create(threshold=self.threshold)
