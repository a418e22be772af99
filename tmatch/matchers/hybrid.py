"""``hybrid``: pixel copies first, then neural localisation refined inside the neural region.

1. **Copies.** A template that is a pixel copy of a region of the image — as it is, or
   resampled by the ratio of two display scales (a screenshot at 1x searched in one at 2x) — is
   found by normalised cross-correlation (:mod:`tmatch.matchers.copies`), however small or
   plain: a correlation of at least ``copy_sure`` is the answer (``extra["refined"] == "copy"``,
   the box aligned by ECC when that agrees better), and nothing else runs.
2. **Locate, refine.** A locator (default ``neural``) says where the template is — robust to
   absence, blur and lighting. A keypoint matcher (default ``neural-local``: learned
   descriptors, any angle, 0.25×–4×; or ``sift``, ``akaze``, ``orb``) then runs on the image
   keypoints inside that region (dilated by ``margin``) and fits a homography, accepted when
   consistent: a plausible homography, enough inliers, and a polygon overlapping the locator's
   (IoU ≥ ``consistency``). Otherwise, with ``fallback``, the feature matcher runs on the whole
   image and its answer is taken when it is itself convincing (plausible homography, and at
   least ``min_inliers`` inliers — or, for ``neural-local``, its learned presence head's
   decision). When such a refiner found nothing in the whole image, the locator's answer
   stands only if its score is at least ``overrule`` (else: absent). Otherwise, with ``ecc``,
   the locator's transform is refined to a full homography by intensity alignment
   (:func:`tmatch.geometry.ecc_align`) on the located region, accepted when it converges with
   a correlation of at least ``ecc_min`` and stays consistent; failing that the locator's
   answer stands.
3. **Confirm.** An answer that only one stage gives must agree with the image where it puts
   the template: an aligned grey-level correlation (:func:`tmatch.geometry.aligned_ncc`) of at
   least ``min_agreement`` for the whole-image refinement, of at least ``alone_agreement`` for
   the locator alone (no keypoints and no intensity alignment back it).
4. **Rescue.** A candidate the locator turned down (its ``extra["candidate"]``) is the answer
   when ECC aligns it (correlation ≥ ``rescue_ecc``) and the aligned template agrees with the
   image (≥ ``rescue_agreement``; ``extra["rescued"]``): aligned evidence outweighs the score.
5. **Wider.** When all of this says absent, with ``wider``, the locator searches the rest of
   the full turn (the template at any angle), then the rest of 0.25×–4× (``extra["wider"]``),
   its answers refined, confirmed and rescued in the same way — but the locator alone is no
   answer there (a look-alike at another angle or scale is likelier than the template).
6. **Clear copies.** A copy whose correlation is at least ``copy_min`` and leads the best
   correlation elsewhere by ``copy_margin`` is the answer when all of this says absent, or
   puts the template elsewhere with a lower aligned correlation. When the answer is still
   absent, with ``wider``, copies are looked for over the rest of 0.25×–4× (a zoomed view:
   correlation survives blur and noise where features of a resampled template do not), under
   the same two bars.

``extra["refined"]`` says which stage answered: ``"copy"``, ``"region"``, ``"global"``,
``"ecc"`` or ``False`` (the locator alone).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.copies import RATIOS, Copy, copy_instances, copy_ratios, find_copy
from tmatch.matchers.features import FeatureMatcher
from tmatch.matchers.options import MAX_THREADS, Option, work_options
from tmatch.registry import load_matcher


@runtime_checkable
class Refiner(Protocol):
    """What ``hybrid`` needs of its refiner (``sift``, ``akaze``, ``orb``, ``neural-local``): the
    template prepared once, then a homography fitted from keypoints of one region of the image.

    ``decides_presence`` (optional attribute, ``False`` when absent): the refiner's own learned
    head says whether the template is there, so its "found" stands without ``min_inliers``.
    """

    def prepare(self, template: np.ndarray) -> Any:
        """The template's keypoints and descriptors."""

    def match_in_region(self, prepared: Any, template: np.ndarray, image: np.ndarray,
                        region: np.ndarray | None) -> Match:
        """The template's match fitted from the keypoints inside ``region``, an ``(H, W)`` bool
        mask of ``image`` (the whole image when ``None``), in the image's coordinates."""

#: angle step of the full-turn search (the locator's rotations cover ± half of it each).
TURN_STEP = 20
#: template scales of the wider search (those the locator's own grid does not cover).
ZOOM_SCALES = (0.25, 0.35, 0.5, 2.0, 2.83, 4.0)
#: copy ratios of the last resort: 0.25x-4x in quarter octaves, but those the copy stage searched.
ZOOM_COPY_RATIOS = tuple(r for r in (2.0 ** (k / 4) for k in range(-8, 9))
                         if all(abs(math.log(r / q)) > 0.03 for q in RATIOS))


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
        min_agreement: least aligned grey-level correlation (:func:`tmatch.geometry.aligned_ncc`)
            of an answer that only the whole-image refinement gives.
        alone_agreement: the same for an answer that only the locator gives.
        rescue_ecc, rescue_agreement: a candidate the locator turned down is the answer when ECC
            aligns it with at least ``rescue_ecc`` and the aligned template correlates with the
            image by at least ``rescue_agreement``.
        wider: when every stage says absent, search the rest of the full turn, then the rest of
            0.25x–4x, with the locator.
        copies: look for pixel copies (as they are or at a display-scale ratio) first.
        copy_sure: least correlation of a copy to be the answer at once.
        copy_min: least correlation of a copy to be the answer when everything else says absent
            (or agrees less with the image elsewhere).
        copy_margin: least lead of that copy's correlation over the best one elsewhere.
    """

    name = "hybrid"
    description = "neural localisation + learned-keypoint (neural-local) or ECC homography refined in its region"
    multi_instance = True

    OPTIONS = (
        Option("locator", str, "neural", "name of the localising matcher"),
        Option("refiner", str, "neural-local", "a keypoint matcher: neural-local, sift, akaze or orb",
               choices=("sift", "akaze", "orb", "neural-local")),
        Option("margin", float, 0.25, "region dilation, share of the located box's larger side", low=0.0, high=10.0),
        Option("consistency", float, 0.3, "least polygon IoU between refined and located results", low=0.0, high=1.0),
        Option("min_inliers", int, 8, "least RANSAC inliers to accept a refinement (OpenCV refiners; "
               "neural-local decides with its presence head)", low=0, high=10**6),
        Option("locator_options", dict, None, "options of the locator, e.g. {'weights': PATH}", optional=True),
        Option("refiner_options", dict, None, "options of the keypoint matcher, e.g. {'ratio': 0.8}", optional=True),
        Option("weights", Path, None, "shorthand for locator_options['weights']", optional=True),
        Option("fallback", bool, True, "with no consistent refinement in the region, try the whole image"),
        Option("ecc", bool, True, "refine the locator's transform by ECC when the feature matcher cannot"),
        Option("ecc_min", float, 0.85, "least ECC correlation coefficient to accept its homography",
               low=1e-9, high=1.0),
        Option("ecc_side", int, 160, "the template's longer side is scaled to at most this for ECC", low=16,
               high=2048),
        Option("overrule", float, 0.8, "when a refiner with its own presence decision (neural-local) finds "
               "nothing in the whole image, the locator's answer stands only with at least this score",
               low=0.0, high=1.0),
        Option("min_agreement", float, 0.55, "least grey-level correlation between the template and the "
               "image where it is put, for an answer that only the whole-image refinement gives",
               low=-1.0, high=1.0),
        Option("alone_agreement", float, 0.8, "... for an answer that only the locator gives",
               low=-1.0, high=1.0),
        Option("rescue_ecc", float, 0.95, "least ECC correlation to take a candidate the locator turned "
               "down", low=0.0, high=1.0),
        Option("rescue_agreement", float, 0.9, "... and least aligned correlation of the template there",
               low=-1.0, high=1.0),
        Option("wider", bool, True, "when every stage says absent, search the rest of the full turn "
               f"({TURN_STEP} degree steps), then the rest of 0.25x-4x, with the locator (locators with "
               "rotations and scales)"),
        Option("copies", bool, True, "look for pixel copies of the template (as they are or at a "
               "display-scale ratio) by correlation first"),
        Option("copy_sure", float, 0.97, "least correlation of a copy to be the answer at once",
               low=0.0, high=1.0),
        Option("copy_min", float, 0.8, "least correlation of a copy to be the answer when the other "
               "stages say absent", low=0.0, high=1.0),
        Option("copy_margin", float, 0.12, "least lead of that copy's correlation over the best one "
               "elsewhere", low=0.0, high=2.0),
        # Run options, passed on to the locator when it declares them (a benchmark gives them to
        # every matcher).
        Option("runtime", str, None, "the locator's runtime", optional=True),
        Option("device", str, None, "the locator's device", optional=True),
        Option("threads", int, None, "the locator's CPU threads", low=1, high=MAX_THREADS, optional=True),
        Option("batch_size", int, None, "the locator's batch size", low=1, high=1024, optional=True),
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
        # the locator over the rest of the full turn, then over the rest of 0.25x-4x
        self._wider: list[Matcher] = []
        table = type(self._locator).option_table()
        if self.wider and "rotations" in table and "scales" in table:
            base = [float(a) for a in self._locator.rotations]
            rest = tuple(float(a) for a in range(-160, 181, TURN_STEP)
                         if all(abs((a - b + 180.0) % 360.0 - 180.0) > TURN_STEP / 2 for b in base))
            lo, hi = min(self._locator.scales), max(self._locator.scales)
            zoom = tuple(z for z in ZOOM_SCALES if z < lo / 1.2 or z > hi * 1.2)
            # the turn at the middle three scales (as good on the rotation protocol, 40% cheaper)
            mid = tuple(sorted(self._locator.scales, key=lambda z: abs(math.log(z)))[:3])
            if rest:
                self._wider.append(load_matcher(self.locator, **{**opts, "rotations": rest, "scales": mid}))
            if zoom:
                self._wider.append(load_matcher(self.locator, **{**opts, "scales": zoom}))
        # the run's threads reach the refiner too (unless its own options say otherwise)
        ref_opts = {**accepted_options(self.refiner, {k: v for k, v in run.items() if k == "threads"}),
                    **(self.refiner_options or {})}
        ref = load_matcher(self.refiner, **ref_opts)
        if not isinstance(ref, Refiner):
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

    def prepare(self, template: np.ndarray) -> tuple[Any, Any, list[Any]]:
        return (self._locator.prepare(template), self._refiner.prepare(template),
                [w.prepare(template) for w in self._wider])

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

    def _ecc(self, hm: np.ndarray, template: np.ndarray, image: np.ndarray,
             min_cc: float | None = None) -> tuple[np.ndarray | None, float]:
        return geometry.ecc_align(hm, template, image, side=self.ecc_side,
                                  min_cc=self.ecc_min if min_cc is None else min_cc)

    def _accept(self, ref: Match, loc: Match, how: str) -> Match:
        ref.score = max(float(loc.score), float(ref.score)) if loc.found else float(ref.score)
        ref.extra = {**ref.extra, "refined": how, "locator_score": float(loc.score)}
        ref.method = self.name
        return ref

    def _copy(self, template: np.ndarray, image: np.ndarray) -> Copy | None:
        if not self.copies:
            return None
        return find_copy(template, image, copy_ratios(template.shape[:2], image.shape[:2]))

    def _copy_match(self, c: Copy, template: np.ndarray, image: np.ndarray) -> Match:
        """The copy as a match; ECC aligns its box when the copy is not exact (a warp the box
        cannot follow) and the alignment agrees at least as well."""
        hm = c.homography(template.shape[:2])
        extra: dict[str, Any] = {"refined": "copy", "ncc": round(c.ncc, 4), "ratio": c.ratio,
                                 "margin": round(c.margin, 4)}
        if self.ecc and c.ncc < 0.995:
            ehm, cc = self._ecc(hm, template, image)
            if ehm is not None and cc >= c.ncc and geometry.polygon_iou(
                    geometry.template_polygon(ehm, template.shape[:2]),
                    geometry.template_polygon(hm, template.shape[:2])) >= 0.5:
                hm, extra["ecc"] = ehm, round(cc, 4)
        return self._from_homography(hm, template.shape[:2], image.shape[:2], float(np.clip(c.ncc, 0, 1)),
                                     **extra)

    @staticmethod
    def _homography(m: Match, template: np.ndarray) -> np.ndarray:
        """``m``'s template → image homography (from its polygon when it has none)."""
        if m.homography is not None:
            return m.homography
        return cv2.getPerspectiveTransform(
            geometry.rect_polygon(0, 0, template.shape[1], template.shape[0]).astype(np.float32),
            np.asarray(m.polygon, np.float32)).astype(np.float64)

    def _confirmed(self, m: Match, template: np.ndarray, image: np.ndarray) -> Match:
        """``m``, or absent when only one stage gives it (the whole-image refinement, or the
        locator alone) and the template does not agree with the image where it is put."""
        how = m.extra.get("refined")
        if not (m.found and how in ("global", False)):
            return m
        agree = geometry.aligned_ncc(template, image, self._homography(m, template))
        if agree >= (self.min_agreement if how == "global" else self.alone_agreement):
            return m
        return Match.absent(image.shape[:2], score=float(m.score), method=self.name, refined=False,
                            unconfirmed=m.extra.get("refined"), agreement=round(agree, 4))

    def _decide(self, loc: Match, prepared: tuple[Any, Any, list[Any]], template: np.ndarray,
                image: np.ndarray) -> Match:
        """The answer for one image from the locator's ``loc``: refined and confirmed, else the
        locator over the rest of the turn and of the scale range."""
        _, p_ref, p_wider = prepared
        m = self._confirmed(self._refine(loc, p_ref, template, image), template, image)
        if m.found:
            return m
        rescued = self._rescue(loc, template, image)
        if rescued is not None:
            return rescued
        for wide, p_wide in zip(self._wider, p_wider):
            w = wide.match_prepared(p_wide, template, image)
            if w.found:
                w = self._confirmed(self._refine(w, p_ref, template, image), template, image)
                if w.found and w.extra.get("refined") is not False:
                    w.extra = {**w.extra, "wider": True}
                    return w
            rescued = self._rescue(w, template, image)
            if rescued is not None:
                rescued.extra["wider"] = True
                return rescued
        return m

    def _rescue(self, loc: Match, template: np.ndarray, image: np.ndarray) -> Match | None:
        """The candidate the locator turned down, when intensity alignment from it converges
        (ECC correlation ≥ ``rescue_ecc``) and the aligned template agrees with the image
        (aligned correlation ≥ ``rescue_agreement``): aligned evidence outweighs the locator's
        score."""
        cand = loc.extra.get("candidate") if not loc.found else None
        if cand is None or not self.ecc:
            return None
        hm, cc = self._ecc(np.asarray(cand, float), template, image, min_cc=self.rescue_ecc)
        if hm is None:
            return None
        agree = geometry.aligned_ncc(template, image, hm)
        if agree < self.rescue_agreement:
            return None
        m = self._from_homography(hm, template.shape[:2], image.shape[:2], float(min(cc, agree)),
                                  ecc=round(cc, 4), agreement=round(agree, 4), rescued=True,
                                  locator_score=float(loc.score))
        m = self._checked(m, template.shape[:2])
        if not m.found:
            return None
        m.extra["refined"] = "ecc"
        m.method = self.name
        return m

    def _match(self, prepared: tuple[Any, Any, list[Any]], template: np.ndarray, image: np.ndarray) -> Match:
        return self._decide(self._locator.match_prepared(prepared[0], template, image), prepared, template, image)

    def _match_batch(self, prepared: tuple[Any, Any, list[Any]], template: np.ndarray,
                     images: Sequence[np.ndarray]) -> list[Match]:
        locs = self._locator.match_prepared_many(prepared[0], template, images)
        return [self._decide(loc, prepared, template, im) for loc, im in zip(locs, images)]

    # Copies are looked for on the pair as given, before any rescaling to the working size
    # (a display-scale ratio does not survive a rescaled template).
    def _copy_first(self, template: np.ndarray, image: np.ndarray) -> tuple[Copy | None, Match | None]:
        """``(copy, answer)``: the answer when the copy is sure."""
        c = self._copy(template, image) if max(image.shape[:2]) <= self.work_side else None
        if c is not None and c.ncc >= self.copy_sure:
            return c, self._checked(self._copy_match(c, template, image), template.shape[:2])
        return c, None

    def _copy_last(self, c: Copy | None, m: Match, template: np.ndarray, image: np.ndarray) -> Match:
        """``m``, or the copy when it is clear and ``m`` is absent, or elsewhere and agrees
        less with the image (aligned correlation) than the copy does."""
        if c is None or c.ncc < self.copy_min or c.margin < self.copy_margin:
            return m
        copy = self._checked(self._copy_match(c, template, image), template.shape[:2])
        if not m.found or (copy.found and geometry.polygon_iou(m.polygon, copy.polygon) < 0.5
                           and geometry.aligned_ncc(template, image, self._homography(m, template)) < c.ncc):
            return copy
        return m

    def _zoomed_copy(self, m: Match, template: np.ndarray, image: np.ndarray) -> Match:
        """``m``, or when it is absent a clear copy over the rest of 0.25x-4x."""
        if m.found or not (self.copies and self.wider) or max(image.shape[:2]) > self.work_side:
            return m
        c = find_copy(template, image, ZOOM_COPY_RATIOS)
        if c is None or c.ncc < self.copy_min or c.margin < self.copy_margin:
            return m
        copy = self._checked(self._copy_match(c, template, image), template.shape[:2])
        if copy.found:
            copy.extra["wider"] = True
        return copy if copy.found else m

    def _solve(self, prepared: Any, template: np.ndarray, image: np.ndarray) -> Match:
        c, sure = self._copy_first(template, image)
        if sure is not None and sure.found:
            return sure
        m = self._copy_last(c, super()._solve(prepared, template, image), template, image)
        return self._zoomed_copy(m, template, image)

    def _solve_batch(self, prepared: Any, template: np.ndarray, images: Sequence[np.ndarray]) -> list[Match]:
        firsts = [self._copy_first(template, im) for im in images]
        rest = [i for i, (_, sure) in enumerate(firsts) if sure is None or not sure.found]
        out: list[Match] = [sure for _, sure in firsts]  # type: ignore[misc]
        for i, m in zip(rest, super()._solve_batch(prepared, template, [images[i] for i in rest])):
            out[i] = self._zoomed_copy(self._copy_last(firsts[i][0], m, template, images[i]), template, images[i])
        return out

    def _match_all(self, prepared: tuple[Any, Any, list[Any]], template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        """The locator's instances, refined and confirmed as a single answer is."""
        p_loc, p_ref, _ = prepared
        locs = self._locator.match_all_prepared(p_loc, template, image, max_instances, min_score)
        return [self._confirmed(self._refine(loc, p_ref, template, image), template, image) for loc in locs]

    def _solve_all(self, prepared: Any, template: np.ndarray, image: np.ndarray, max_instances: int,
                   min_score: float | None) -> list[Match]:
        """Every instance, the best being :meth:`match`'s answer (none when it says absent):
        then copies as good as the best one (identical repeats, all of them) and the locator's
        other instances that refinement and confirmation keep, none overlapping a better one."""
        others = super()._solve_all(prepared, template, image, max_instances, min_score)  # checks min_score
        best = self._solve(prepared, template, image)
        if not best.found or (min_score is not None and best.score < min_score):
            return []
        cands = [best]
        if self.copies and max(image.shape[:2]) <= self.work_side:
            ncc = best.extra.get("ncc") if best.extra.get("refined") == "copy" else None
            ratio = float(best.extra.get("ratio", 1.0)) if ncc is not None else 1.0
            bar = max(self.copy_min, float(ncc) - 0.05) if ncc is not None else self.copy_sure
            for c in copy_instances(template, image, ratio, bar, max_instances + 1):
                m = self._checked(self._copy_match(c, template, image), template.shape[:2])
                if m.found:
                    cands.append(m)
        cands += others
        cands = [m for m in cands if min_score is None or m.score >= min_score]
        keep: list[Match] = []
        for m in cands[:1] + sorted(cands[1:], key=lambda m: -m.score):  # the best stays first
            if all(geometry.polygon_iou(m.polygon, k.polygon) < 0.3 for k in keep):
                keep.append(m)
        return keep[:max_instances]
