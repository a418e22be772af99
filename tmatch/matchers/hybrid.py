"""``hybrid``: neural localisation, then geometric refinement inside the neural region.

A locator (default ``neural``) says where the template is — robust to absence, blur and
lighting. A keypoint matcher (default ``neural-local``: learned descriptors, any angle, 0.25×–4×;
or ``sift``, ``akaze``, ``orb``) then runs on the image keypoints inside that region (dilated by
``margin``) and fits a homography. The refined answer is accepted only when it is
consistent: a plausible homography, enough inliers, and a polygon overlapping the locator's
(IoU ≥ ``consistency``). Otherwise, with ``fallback``, the feature matcher runs on the whole
image and its answer is taken when it is itself convincing (plausible homography, and at least
``min_inliers`` inliers — or, for ``neural-local``, its learned presence head's decision). When
such a refiner found nothing in the whole image, the locator's answer stands only if its score
is at least ``overrule`` (else: absent). Otherwise, with ``ecc``, the locator's transform is refined to a full homography by intensity
alignment (OpenCV's ECC, robust to gain and bias) on the located region,
accepted when the alignment converges with a correlation of at least ``ecc_min`` and stays
consistent; failing that the locator's answer stands. ``extra["refined"]`` says which:
``"region"``, ``"global"``, ``"ecc"`` or ``False``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.features import FeatureMatcher
from tmatch.matchers.options import Option, work_options
from tmatch.registry import load_matcher


class HybridMatcher(Matcher):
    """Locate with one matcher, refine with a feature matcher inside the located region.

    Args:
        locator: name of the localising matcher (``neural`` by default).
        refiner: name of a keypoint matcher (``neural-local``, ``sift``, ``akaze`` or ``orb``).
        margin: region dilation, as a fraction of the located box's larger side.
        consistency: least polygon IoU between refined and located results to accept refinement.
        min_inliers: least RANSAC inliers to accept refinement (OpenCV refiners).
        locator_options: options passed to the locator (e.g. ``{"weights": PATH}``).
        refiner_options: options passed to the keypoint matcher (e.g. ``{"ratio": 0.8}``).
        weights: shorthand for ``locator_options["weights"]``.
        fallback: when the region gives no consistent refinement, try the whole image.
        ecc: refine the locator's transform by ECC when the feature matcher cannot.
        ecc_min: least ECC correlation coefficient to accept its homography.
        ecc_side: the template's longer side is scaled to at most this for ECC (speed).
        overrule: least locator score for its answer to stand when a refiner with its own
            presence decision found nothing in the whole image.
    """

    name = "hybrid"
    description = "neural localisation + learned-keypoint (neural-local) or ECC homography refined in its region"
    multi_instance = True

    OPTIONS = (
        Option("locator", str, "neural", "name of the localising matcher"),
        Option("refiner", str, "neural-local", "a keypoint matcher: neural-local, sift, akaze or orb",
               choices=("sift", "akaze", "orb", "neural-local")),
        Option("margin", float, 0.25, "region dilation, share of the located box's larger side", low=0.0),
        Option("consistency", float, 0.3, "least polygon IoU between refined and located results", low=0.0, high=1.0),
        Option("min_inliers", int, 8, "least RANSAC inliers to accept a refinement (OpenCV refiners; "
               "neural-local decides with its presence head)", low=0),
        Option("locator_options", dict, None, "options of the locator, e.g. {'weights': PATH}", optional=True),
        Option("refiner_options", dict, None, "options of the keypoint matcher, e.g. {'ratio': 0.8}", optional=True),
        Option("weights", Path, None, "shorthand for locator_options['weights']", optional=True),
        Option("fallback", bool, True, "with no consistent refinement in the region, try the whole image"),
        Option("ecc", bool, True, "refine the locator's transform by ECC when the feature matcher cannot"),
        Option("ecc_min", float, 0.8, "least ECC correlation coefficient to accept its homography",
               low=1e-9, high=1.0),
        Option("ecc_side", int, 160, "the template's longer side is scaled to at most this for ECC", low=16),
        Option("overrule", float, 0.8, "when a refiner with its own presence decision (neural-local) finds "
               "nothing in the whole image, the locator's answer stands only with at least this score",
               low=0.0, high=1.0),
        # Run options, passed on to the locator when it declares them (a benchmark gives them to
        # every matcher).
        Option("runtime", str, None, "the locator's runtime", optional=True),
        Option("device", str, None, "the locator's device", optional=True),
        Option("threads", int, None, "the locator's CPU threads", low=1, optional=True),
        Option("batch_size", int, None, "the locator's batch size", low=1, optional=True),
        Option("allow_untrained", bool, None, "the locator's allow_untrained (neural locators)", optional=True),
        *work_options(2560),
    )

    def __init__(self, **options: Any):
        from tmatch.registry import accepted_options

        super().__init__(**options)
        opts = dict(self.locator_options or {})
        if self.weights is not None:
            opts["weights"] = self.weights
        run = {"runtime": self.runtime, "batch_size": self.batch_size, "allow_untrained": self.allow_untrained,
               **self._run}
        run = {k: v for k, v in run.items() if v is not None}
        opts.update(accepted_options(self.locator, run))
        self._locator = load_matcher(self.locator, **opts)
        ref = load_matcher(self.refiner, **(self.refiner_options or {}))
        if not callable(getattr(ref, "match_in_region", None)):
            raise InputError(f"refiner must be a keypoint matcher (sift, akaze, orb, neural-local), "
                             f"got {self.refiner!r}")
        self._refiner = ref
        self.compute = self._locator.compute

    @property
    def device(self) -> str:
        """Where the locator runs (``cpu`` for classical locators)."""
        loc = self.__dict__.get("_locator")
        return loc.device if loc is not None else "cpu"

    @device.setter
    def device(self, value: str | None) -> None:  # the option, passed on to the locator
        self._run["device"] = value

    @property
    def threads(self) -> int | None:
        """The locator's thread count (``None``: its library's default)."""
        loc = self.__dict__.get("_locator")
        return loc.threads if loc is not None else self._run.get("threads")

    @threads.setter
    def threads(self, value: int | None) -> None:  # the option, passed on to the locator
        self._run["threads"] = value

    @property
    def _run(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_run_options", {})

    def prepare(self, template: np.ndarray) -> tuple[Any, Any]:
        return self._locator.prepare(template), self._refiner.prepare(template)

    def _region(self, loc: Match) -> np.ndarray:
        x, y, w, h = loc.box
        r = max(3, int(round(self.margin * max(w, h))))
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(loc.mask.astype(np.uint8), k) > 0

    def _convincing(self, ref: Match, template: np.ndarray, image: np.ndarray) -> bool:
        """A refiner's answer stands on its own: found with a plausible homography, and either
        ``min_inliers`` inliers or (a refiner with a learned presence head) its own decision."""
        enough = getattr(self._refiner, "decides_presence", False) or \
            FeatureMatcher.inliers(ref) >= self.min_inliers
        return (ref.found and enough
                and geometry.plausible_homography(ref.homography, template.shape[:2], image.shape[:2]))

    def _refine(self, loc: Match, prepared_ref: Any, template: np.ndarray, image: np.ndarray) -> Match:
        if loc.found and loc.box is not None and loc.polygon is not None:
            # every refiner describes only the located region here (its cost follows the region)
            ref = self._refiner.match_in_region(prepared_ref, template, image, self._region(loc))
            if self._convincing(ref, template, image) and \
                    geometry.polygon_iou(ref.polygon, loc.polygon) >= self.consistency:
                return self._accept(ref, loc, "region")
        if self.fallback:  # a convincing whole-image answer outweighs an alignment from the locator
            ref = self._refiner.match_in_region(prepared_ref, template, image, None)
            if self._convincing(ref, template, image):
                return self._accept(ref, loc, "global")
            if getattr(self._refiner, "decides_presence", False) and loc.found and loc.score < self.overrule:
                # two learned decisions disagree: the locator alone needs stronger evidence
                return Match.absent(image.shape[:2], score=float(loc.score), method=self.name, refined=False,
                                    overruled=True, locator_score=float(loc.score))
        if self.ecc and loc.found and loc.homography is not None:
            hm, cc = self._ecc(loc.homography, template, image)
            if hm is not None and geometry.polygon_iou(geometry.template_polygon(hm, template.shape[:2]),
                                                       loc.polygon) >= max(self.consistency, 0.5):
                m = self._from_homography(hm, template.shape[:2], image.shape[:2], float(loc.score),
                                          ecc=round(cc, 4))
                return self._accept(m, loc, "ecc")
        loc.extra = {**loc.extra, "refined": False}
        loc.method = self.name
        return loc

    def _ecc(self, hm: np.ndarray, template: np.ndarray, image: np.ndarray) -> tuple[np.ndarray | None, float]:
        """ECC alignment (homography) of the template with the image around ``hm``: ``(refined
        template-to-image homography or None, correlation coefficient)``."""
        th, tw = template.shape[:2]
        H, W = image.shape[:2]
        s = min(1.0, self.ecc_side / max(th, tw))
        poly = geometry.template_polygon(hm, (th, tw))
        pad = 0.15 * float(np.ptp(poly, axis=0).max()) + 4
        x0, y0 = (int(max(0, np.floor(v - pad))) for v in poly.min(axis=0))
        x1, y1 = int(min(W, np.ceil(poly[:, 0].max() + pad))), int(min(H, np.ceil(poly[:, 1].max() + pad)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None, 0.0
        # Work with the image region scaled like the template (ECC's cost follows template pixels).
        tpl = cv2.resize(template, (max(8, round(tw * s)), max(8, round(th * s))), interpolation=cv2.INTER_AREA) \
            if s < 1 else template
        reg = image[y0:y1, x0:x1]
        if s < 1:
            reg = cv2.resize(reg, (max(8, round((x1 - x0) * s)), max(8, round((y1 - y0) * s))),
                             interpolation=cv2.INTER_AREA)
        sx_t, sy_t = tpl.shape[1] / tw, tpl.shape[0] / th
        sx_r, sy_r = reg.shape[1] / (x1 - x0), reg.shape[0] / (y1 - y0)
        to_tpl = np.diag([sx_t, sy_t, 1.0])  # template edge coords -> scaled template
        to_reg = np.diag([sx_r, sy_r, 1.0]) @ np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]])
        c = to_reg @ hm @ np.linalg.inv(to_tpl)
        warp = geometry.to_cv_homography(c / c[2, 2]).astype(np.float32)
        g_t = cv2.cvtColor(tpl, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        g_r = cv2.cvtColor(reg, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        try:
            cc, warp = cv2.findTransformECC(g_t, g_r, warp, cv2.MOTION_HOMOGRAPHY,
                                            (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5), None, 3)
        except cv2.error:
            return None, 0.0
        if not np.isfinite(cc) or cc < self.ecc_min:
            return None, float(cc) if np.isfinite(cc) else 0.0
        out = np.linalg.inv(to_reg) @ geometry.from_cv_homography(warp.astype(np.float64)) @ to_tpl
        out = out / out[2, 2]
        if not geometry.plausible_homography(out, (th, tw), (H, W)):
            return None, float(cc)
        return out, float(cc)

    def _accept(self, ref: Match, loc: Match, how: str) -> Match:
        ref.score = max(float(loc.score), float(ref.score)) if loc.found else float(ref.score)
        ref.extra = {**ref.extra, "refined": how, "locator_score": float(loc.score)}
        ref.method = self.name
        return ref

    def _match(self, prepared: tuple[Any, Any], template: np.ndarray, image: np.ndarray) -> Match:
        p_loc, p_ref = prepared
        loc = self._locator.match_prepared(p_loc, template, image)
        return self._refine(loc, p_ref, template, image)

    def _match_batch(self, prepared: tuple[Any, Any], template: np.ndarray,
                     images: Sequence[np.ndarray]) -> list[Match]:
        p_loc, p_ref = prepared
        locs = self._locator.match_prepared_many(p_loc, template, images)
        return [self._refine(loc, p_ref, template, im) for loc, im in zip(locs, images)]

    def _match_all(self, prepared: tuple[Any, Any], template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        p_loc, p_ref = prepared
        locs = self._locator.match_all_prepared(p_loc, template, image, max_instances, min_score)
        return [self._refine(loc, p_ref, template, image) for loc in locs]
