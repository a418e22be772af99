"""``hybrid``: neural localisation, then geometric refinement inside the neural region.

A locator (default ``neural``) says roughly where the template is — robust to absence, blur and
lighting. A feature matcher (default ``sift``) then runs on the image keypoints inside that region
(dilated by ``margin``) and fits a homography. The refined answer is accepted only when it is
consistent: a plausible homography, enough inliers, and a polygon overlapping the locator's
(IoU ≥ ``consistency``). Otherwise, with ``fallback``, the feature matcher runs on the whole
image and its answer is taken when it is itself convincing (plausible homography, at least
``min_inliers`` inliers); failing that the locator's answer stands. ``extra["refined"]`` says
which: ``"region"``, ``"global"`` or ``False``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.features import FeatureMatcher
from tmatch.registry import load_matcher


class HybridMatcher(Matcher):
    """Locate with one matcher, refine with a feature matcher inside the located region.

    Args:
        locator: name of the localising matcher (``neural`` by default).
        refiner: name of a feature matcher (``sift``, ``akaze`` or ``orb``).
        margin: region dilation, as a fraction of the located box's larger side.
        consistency: least polygon IoU between refined and located results to accept refinement.
        min_inliers: least RANSAC inliers to accept refinement.
        locator_options: options passed to the locator (e.g. ``{"weights": PATH}``).
        weights: shorthand for ``locator_options["weights"]``.
        fallback: when the region gives no consistent refinement, try the whole image.
    """

    name = "hybrid"
    description = "neural localisation + SIFT homography refined inside the neural region"
    multi_instance = True

    def __init__(self, locator: str = "neural", refiner: str = "sift", margin: float = 0.25,
                 consistency: float = 0.3, min_inliers: int = 8,
                 locator_options: dict[str, Any] | None = None, weights: str | None = None,
                 fallback: bool = True, **kwargs: Any):
        opts = dict(locator_options or {})
        if weights is not None:
            opts["weights"] = weights
        opts.update(kwargs)  # e.g. runtime=, threads= for the neural locator
        self.locator = str(locator)
        self.refiner = str(refiner)
        self.margin = float(margin)
        self.consistency = float(consistency)
        self.min_inliers = int(min_inliers)
        self.fallback = bool(fallback)
        self._locator = load_matcher(self.locator, **opts)
        ref = load_matcher(self.refiner)
        if not isinstance(ref, FeatureMatcher):
            raise InputError(f"refiner must be a feature matcher (sift, akaze, orb), got {refiner!r}")
        self._refiner: FeatureMatcher = ref

    @property
    def device(self) -> str:
        """Where the locator runs (``cpu`` for classical locators)."""
        return str(getattr(self._locator, "device", "cpu"))

    def prepare(self, template: np.ndarray) -> tuple[Any, Any]:
        return self._locator.prepare(template), self._refiner.prepare(template)

    def _region(self, loc: Match) -> np.ndarray:
        x, y, w, h = loc.box
        r = max(3, int(round(self.margin * max(w, h))))
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(loc.mask.astype(np.uint8), k) > 0

    def _convincing(self, ref: Match, template: np.ndarray, image: np.ndarray) -> bool:
        return (ref.found and int(ref.extra.get("inliers", 0)) >= self.min_inliers
                and geometry.plausible_homography(ref.homography, template.shape[:2], image.shape[:2]))

    def _refine(self, loc: Match, prepared_ref: Any, template: np.ndarray, image: np.ndarray) -> Match:
        if loc.found and loc.box is not None and loc.polygon is not None:
            ref = self._refiner.match_in_region(prepared_ref, template, image, self._region(loc))
            if self._convincing(ref, template, image) and \
                    geometry.polygon_iou(ref.polygon, loc.polygon) >= self.consistency:
                return self._accept(ref, loc, "region")
        if self.fallback:
            ref = self._refiner.match_in_region(prepared_ref, template, image, None)
            if self._convincing(ref, template, image):
                return self._accept(ref, loc, "global")
        loc.extra = {**loc.extra, "refined": False}
        loc.method = self.name
        return loc

    def _accept(self, ref: Match, loc: Match, how: str) -> Match:
        ref.score = max(float(loc.score), float(ref.score)) if loc.found else float(ref.score)
        ref.extra = {**ref.extra, "refined": how, "locator_score": float(loc.score)}
        ref.method = self.name
        return ref

    def _match(self, prepared, template: np.ndarray, image: np.ndarray) -> Match:
        p_loc, p_ref = prepared
        loc = self._locator._match(p_loc, template, image)
        return self._refine(loc, p_ref, template, image)

    def _match_batch(self, prepared, template, images):
        p_loc, p_ref = prepared
        locs = self._locator._match_batch(p_loc, template, images)
        return [self._refine(loc, p_ref, template, im) for loc, im in zip(locs, images)]

    def _match_all(self, prepared, template, image, max_instances, min_score):
        p_loc, p_ref = prepared
        locs = self._locator._match_all(p_loc, template, image, max_instances, min_score)
        return [self._refine(loc, p_ref, template, image) for loc in locs]
