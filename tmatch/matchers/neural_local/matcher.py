"""``neural-local``: learned local descriptors on oriented, scaled keypoints, verified by MAGSAC.

Composes the stages: :mod:`.detect` (keypoints with scale and orientation), :mod:`.describe`
(rectified patches → learned descriptors), :mod:`.verify` (mutual matches, homography),
:mod:`.presence` (learned decision). Rotation and scale invariance come from the keypoint
frames, so one pass handles any angle and 0.25×–4× scale; the output is a full homography.

>>> import tmatch
>>> m = tmatch.load_matcher("neural-local")
>>> m.max_points, m.ratio
(1500, 0.9)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tmatch.errors import CheckpointError
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.neural_local.describe import Describer, rectified_patches
from tmatch.matchers.neural_local.detect import Keypoints, detect_fitted, gray
from tmatch.matchers.neural_local.presence import PresenceHead
from tmatch.matchers.neural_local.verify import Verified, fit, mutual_matches
from tmatch.matchers.options import MAX_THREADS, Option
from tmatch.threads import limit_threads

#: the shipped graph; its settings and presence head are in the JSON file beside it.
SHIPPED = Path(__file__).resolve().parents[2] / "weights" / "neural-local.safetensors"


@dataclass
class LocalFeatures:
    """Keypoints ``(N)`` and their ``(N, D)`` unit descriptors, in the image's own pixels."""

    keypoints: Keypoints
    descriptors: np.ndarray


def load_settings(weights: str | Path) -> dict:
    """The JSON beside the descriptor weights: ``magnify``, ``contrast``, ``presence``, metrics."""
    path = Path(weights).with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"settings of the descriptor graph not found: {path}")
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if d.get("matcher") != "neural-local":
        raise CheckpointError(f"{path} does not belong to neural-local (matcher: {d.get('matcher')!r})")
    return d


class NeuralLocalMatcher(Matcher):
    """Learned patch descriptors on difference-of-Gaussians keypoints + MAGSAC homography.

    Options are declared in ``OPTIONS``; ``weights`` is the ``.safetensors`` file written by
    ``tmatch train --preset neural-local``, with its JSON settings beside it.
    """

    name = "neural-local"
    fit_share = 1.0  # keypoints carry their own scale (as for sift): shrink only to fit
    decides_presence = True  # found = the learned presence head's decision (hybrid trusts it)
    description = "learned rotation/scale-invariant local descriptors + MAGSAC homography + learned presence"

    OPTIONS = (
        Option("weights", Path, None, "descriptor weights (.safetensors, JSON beside it); default: the shipped ones",
               optional=True),
        Option("max_points", int, 1500, "keypoints kept in a 640x480 search image; a larger one keeps "
               "as many per pixel (its longer side capped by max_side)", low=16, high=20000),
        Option("template_points", int, 1000, "keypoints kept in the template", low=16, high=20000),
        Option("max_side", int, 1280, "longer side the search image is shrunk to before detection", low=64,
               high=8192),
        Option("min_side", int, 256, "longer side a smaller search image is enlarged to (templates "
               "are not: measured, that costs warp accuracy)", low=16, high=8192),
        Option("ratio", float, 0.9, "ratio test of the mutual nearest neighbours", low=0.0, high=1.0),
        Option("ransac_threshold", float, 4.0, "MAGSAC reprojection threshold, pixels", low=0.5, high=1000.0),
        Option("threads", int, None, "CPU threads (default: 1 for the descriptor, OpenCV's own)",
               low=1, high=MAX_THREADS, optional=True),
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        path = Path(self.weights) if self.weights else SHIPPED
        if not path.is_file():
            raise CheckpointError(f"descriptor weights not found: {path}")
        settings = load_settings(path)
        self.magnify = float(settings.get("magnify", 3.0))
        self.contrast = float(settings.get("contrast", 0.03))
        self.head = PresenceHead.from_dict(settings["presence"]) if "presence" in settings \
            else PresenceHead.untrained()
        graph = settings.get("graph") if isinstance(settings.get("graph"), dict) else {}
        self.describer = Describer(path, self.threads, None if not {"file", "weights_digest"} <= set(graph) else
                                   (path.parent / str(graph["file"]), str(graph["weights_digest"])))

    # --- stages
    def features(self, rgb: np.ndarray, max_points: int, max_side: int | None,
                 min_side: int | None = None) -> LocalFeatures:
        """Keypoints and descriptors of an ``(H, W, 3)`` image (worked on at a size between
        ``min_side`` and ``max_side``; keypoints in the image's own pixels)."""
        work, kps, f = detect_fitted(gray(rgb), max_points, max_side, self.contrast, min_side)
        desc = self.describer(rectified_patches(work, kps, self.magnify))
        return LocalFeatures(kps.scaled(f) if f != 1.0 else kps, desc)

    def prepare(self, template: np.ndarray) -> LocalFeatures:
        with limit_threads(self.threads):
            return self.features(template, self.template_points, self.max_side)

    def verify(self, tpl: LocalFeatures, img: LocalFeatures, template_hw: tuple[int, int],
               image_hw: tuple[int, int]) -> Verified:
        """Mutual matches of template and image features, and the homography they support."""
        pairs = mutual_matches(tpl.descriptors, img.descriptors, self.ratio)
        src = tpl.keypoints.points[pairs[:, 0]]
        dst = img.keypoints.points[pairs[:, 1]]
        dist = np.linalg.norm(tpl.descriptors[pairs[:, 0]] - img.descriptors[pairs[:, 1]], axis=1)
        return fit(src, dst, dist, template_hw, image_hw, self.ransac_threshold)

    def image_features(self, image: np.ndarray) -> LocalFeatures:
        """The search image's keypoints and descriptors (the work of :meth:`match` on the image)."""
        with limit_threads(self.threads):
            return self.features(image, self.point_budget(image.shape[:2]), self.max_side, self.min_side)

    def point_budget(self, image_hw: tuple[int, int]) -> int:
        """Keypoints kept in a search image of ``image_hw``: ``max_points`` per 640×480 pixels of
        the working size (a page of small text has keypoints everywhere; a fixed budget would
        keep only the strongest few and miss a small element)."""
        h, w = image_hw
        f = min(1.0, self.max_side / max(h, w, 1))
        return round(self.max_points * max(1.0, (h * f) * (w * f) / (640 * 480)))

    def region_features(self, image: np.ndarray, region: np.ndarray, pad: int = 16) -> LocalFeatures:
        """Keypoints and descriptors of the bounding box of ``region`` ``(H, W)`` bool, grown by
        ``pad`` pixels (the detector's context), in the image's pixels: a located region costs
        its own area, not the whole image's."""
        if not region.any():
            return LocalFeatures(Keypoints.empty(), np.zeros((0, self.describer.dim), np.float32))
        x, y, w, h = cv2.boundingRect(region.astype(np.uint8))
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(image.shape[1], x + w + pad), min(image.shape[0], y + h + pad)
        f = self.image_features(np.ascontiguousarray(image[y0:y1, x0:x1]))
        k = f.keypoints
        return LocalFeatures(Keypoints(k.points + [x0, y0], k.sizes, k.angles, k.responses), f.descriptors)

    def match_in_region(self, prepared: LocalFeatures, template: np.ndarray, image: np.ndarray,
                        region: np.ndarray | None) -> Match:
        """Match with image keypoints restricted to ``region`` ``(H, W)`` bool (all when None);
        only the region is described (:meth:`region_features`)."""
        img = self.image_features(image) if region is None else self.region_features(image, region)
        if region is not None and len(img.keypoints):
            xy = np.clip(np.round(img.keypoints.points).astype(int), 0, [region.shape[1] - 1, region.shape[0] - 1])
            keep = np.nonzero(region[xy[:, 1], xy[:, 0]])[0]
            img = LocalFeatures(img.keypoints.take(keep), img.descriptors[keep])
        return self._decide(prepared, img, template.shape[:2], image.shape[:2])

    def _match(self, prepared: LocalFeatures, template: np.ndarray, image: np.ndarray) -> Match:
        return self._decide(prepared, self.image_features(image), template.shape[:2], image.shape[:2])

    def _decide(self, prepared: LocalFeatures, img: LocalFeatures, template_hw: tuple[int, int],
                image_hw: tuple[int, int]) -> Match:
        th, tw = template_hw
        v = self.verify(prepared, img, (th, tw), image_hw)
        p = self.head.probability(v.stats())
        extra = {"matches": v.matches, "inliers": v.inliers}
        if v.homography is None or not v.plausible or p < 0.5:
            return Match.absent(image_hw, score=p, method=self.name, **extra)
        return self._from_homography(v.homography, (th, tw), image_hw, p, **extra)
