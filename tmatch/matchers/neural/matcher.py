"""``neural``: template matching by correlating learned features, coarse to fine.

The experiment this project started from trained a dual-encoder U-Net end to end and lost to
SIFT. Ours keeps what a network is good at — features that survive lighting, blur, colour
shifts and moderate warps — and leaves geometry to geometry:

1. **Features.** EfficientNet-Lite0's first stages (:mod:`tmatch.models.features`), fine-tuned
   here for template matching from ImageNet weights, give dense features at strides 8, 4 and 2. Each feature vector is centred by the search image's
   channel means and scaled to unit length, so a dot product is a cosine similarity.
2. **Coarse search.** The template is rendered at ``scales`` × ``rotations`` (on a canvas,
   scaled so that its longer side is ``template_side`` network pixels at scale 1); each
   variant's stride-8 feature map (projected on the ``D`` principal directions of the training
   photos' features — the projection is learnt by ``tmatch train --preset neural``), weighted by
   how much of each cell lies inside the template, is a correlation kernel. One convolution per scale scores every position and angle: the mean
   cosine between template cells and image cells. The best (position, scale, angle), with
   sub-cell interpolation, gives a similarity transform.
3. **Refinement.** On the found region, at a finer resolution (``template_side``), the template
   is rendered at the current scale and angle and every template cell, at stride 8, then 4, then
   2, looks for its best match in a small window around where the current transform puts it
   (sub-cell peak); a RANSAC similarity fitted to those correspondences replaces the transform
   when it is well supported (a stage that fails leaves it unchanged). Strides 4 and 2 are
   precise to about a pixel. A final
   *verification* score is the mean cosine between the template's stride-4 cells and the image
   exactly where the transform puts them; when the strongest coarse peak verifies below
   ``sure``, the next peaks are refined too and the best verified one wins.
4. **Presence.** A logistic head (:class:`tmatch.models.presence.PresenceHead`, trained by ``tmatch train --preset neural``, shipped in
   ``tmatch/weights/neural.safetensors``) turns match statistics — the coarse peak cosine, its
   contrast to the rest of the map, the refined correspondences' mean cosine and inlier share,
   the verification score and how many refinement stages held — into the probability that the
   template is there; ``found`` needs ``presence_threshold``.

The stages live in ``render.py`` (template variants, image features), ``coarse.py`` (step 2)
and ``refine.py`` (step 3); this file composes them.

``match_all`` keeps the strongest coarse peaks (non-maximum suppression), refines each and keeps
those the presence head accepts. See ``docs/neural.md`` for the design and measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmatch import geometry
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.neural.coarse import CoarseResult, coarse_scores, peaks, similarity, subcell1
from tmatch.matchers.neural.refine import refine_stage, similarity_params, verify
from tmatch.matchers.neural.render import Encoded, ImageFeatures, Variant, image_features, render
from tmatch.matchers.options import RUNTIME_OPTIONS, Option, check_grid, work_options
from tmatch.models.presence import MatchStats, PresenceHead
from tmatch.models.weights import resolve_weights

_MAX_SIZES = 16
#: refinement stages: (feature level — 0, 1, 2 for strides 2, 4, 8 —, search radius in cells).
_STAGES = ((2, 2), (1, 2), (0, 2))
#: least (best - median) cosine of a cell's window to use the cell in a refinement.
_DISTINCT = 0.05
#: refinement re-renders the template on this grid: (log-scale step, angle step in degrees).
_RENDER_STEP = (0.01, 1.0)
#: stages that render the template afresh (the first ones correct scale and angle most).
_RERENDER = 2
#: verification under which other peaks are not tried (clearly absent).
_DOUBT = 0.3


@dataclass
class _Prepared:
    template: np.ndarray
    by_r: dict[float, Encoded] = field(default_factory=dict)
    fine: dict[tuple, Variant] = field(default_factory=dict)


@dataclass
class _Candidate:
    hm: np.ndarray
    stats: MatchStats
    variant: Variant
    refined: int  # refinement stages accepted


class NeuralMatcher(Matcher):
    """Ours: learned-feature correlation over scales and rotations, refined at strides 8, 4
    and 2, with a trained presence head.

    Options (see ``OPTIONS``): ``weights`` (presence head from ``tmatch train --preset neural``;
    default: the shipped one), ``runtime`` and ``device`` of the feature network, ``threads``,
    the coarse grid ``scales`` × ``rotations``, the network sizes ``coarse_side``,
    ``template_side``, ``max_side``, ``max_upscale``, the decision ``presence_threshold``,
    ``refine``, ``candidates`` and ``sure`` (verification above which the strongest peak is
    taken without refining others), and ``allow_untrained``.

    ``Match.extra`` (public keys): ``presence``, ``peak``, ``scale``, ``angle``, ``refined``;
    when absent, ``candidate``: the homography of the best candidate it turned down.

    >>> import numpy as np, tmatch
    >>> from skimage import data
    >>> img = data.astronaut()
    >>> m = tmatch.load_matcher("neural", runtime="torch")
    >>> r = m.match(img[100:220, 150:260], img)
    >>> r.found, [round(v / 10) * 10 for v in r.box]
    (True, [150, 100, 110, 120])
    """

    name = "neural"
    description = "ours: correlation of Lite0 features fine-tuned for matching, over scales/rotations, refined, trained presence"
    multi_instance = True
    compute = "torch"
    OPTIONS = (
        Option("weights", Path, None, "presence head .safetensors (default: the one shipped)", optional=True),
        Option("features", Path, None, "the feature stages' ONNX graph (default: the one shipped); its "
               "presence head must have been trained with it", optional=True),
        *RUNTIME_OPTIONS,
        Option("scales", tuple, (0.7, 0.84, 1.0, 1.19, 1.41), "template scales searched (image px per template px)",
               low=0.05, high=20.0),
        Option("rotations", tuple, (-20.0, 0.0, 20.0), "template rotations searched, degrees (clockwise)"),
        Option("coarse_side", int, 56, "template's longer side in network px in the coarse search", low=16, high=512),
        Option("template_side", int, 80, "the same for the refinement", low=16, high=512),
        Option("max_side", int, 1024, "the search image's longer side is never resized above this", low=64, high=4096),
        Option("max_upscale", float, 2.0, "largest resize factor of the image (small templates)", low=0.1, high=8.0),
        Option("presence_threshold", float, 0.5, "presence probability under which the template is absent",
               low=0.0, high=1.0),
        Option("refine", bool, True, "run the refinements (strides 8, 4, 2)"),
        Option("candidates", int, 3, "coarse peaks refined when the strongest one is not verified", low=1, high=50),
        Option("sure", float, 0.65, "verification above which the strongest peak is taken as it is"),
        Option("allow_untrained", bool, False, "with no weights installed, threshold the verification score"),
        *work_options(4096),
    )

    def __init__(self, **options: Any):
        from tmatch.models.features import Lite0Features

        super().__init__(**options)
        check_grid(self.scales, self.rotations, self.name)
        path = resolve_weights(self.weights, self.name, self.allow_untrained,
                               "a presence head from `tmatch train --preset neural`")
        if path is None:
            self.head = PresenceHead.untrained()
        else:
            self.head = PresenceHead.load(path)
            self.weights = str(path)
        self._features = Lite0Features(runtime=self.runtime, device=self.device, threads=self.threads,
                                       graph=self.features)
        self.runtime, self.device = self._features.runtime, self._features.device

    @property
    def meta(self) -> dict[str, Any]:
        """The presence head's metadata (data, recipe, metrics)."""
        return dict(self.head.meta)

    # ------------------------------------------------------------------ template
    def prepare(self, template: np.ndarray) -> _Prepared:
        """Template variants are rendered and encoded on first use for each resize factor."""
        return _Prepared(template=template)

    def factor(self, template_hw: tuple[int, int], image_hw: tuple[int, int], side: int) -> float:
        """Network pixels per image pixel: the template's longer side becomes ``side`` (its
        shorter side at least ``side / 3.5``: a thin template keeps two stride-8 cells across),
        within ``max_side`` for the image and ``max_upscale``."""
        (h, w), (H, W) = template_hw, image_hw
        r = max(side / max(h, w), side / 3.5 / min(h, w))
        r = min(r, self.max_side / max(H, W), self.max_upscale)
        return float(max(r, 8.0 / min(H, W)))  # at least one stride-8 cell across

    def image_features(self, image: np.ndarray, r: float, project: bool = False) -> ImageFeatures:
        """Unit features of the ``(H, W, 3)`` image resized by ``r`` (stride 8 projected by the
        head's projection when ``project``)."""
        return image_features(self._features, image, r, self.head.projection if project else None)

    def _encoded(self, prepared: _Prepared, r: float) -> Encoded:
        key = round(r, 6)
        if key not in prepared.by_r:
            if len(prepared.by_r) >= _MAX_SIZES:
                prepared.by_r.pop(next(iter(prepared.by_r)))
            variants: list[Variant] = []
            for sc in self.scales:
                variants += render(self._features, prepared.template, r, sc, self.rotations)
            prepared.by_r[key] = Encoded(r, variants)
        return prepared.by_r[key]

    def _fine_variant(self, prepared: _Prepared, rf: float, scale: float, angle: float) -> Variant:
        """The template rendered at ``scale`` and ``angle`` for factor ``rf``, both rounded to a
        grid (2% and 1°, which low-level features barely notice) so that the stages and the
        verification mostly share one rendering."""
        ds, da = _RENDER_STEP
        scale = float(np.clip(math.exp(round(math.log(scale) / ds) * ds), 0.05, 20.0))
        angle = float(round(angle / da) * da)
        key = (round(rf, 6), scale, angle)
        fv = prepared.fine.get(key)
        if fv is None:
            if len(prepared.fine) >= 4 * _MAX_SIZES:
                prepared.fine.pop(next(iter(prepared.fine)))
            fv = prepared.fine[key] = render(self._features, prepared.template, rf, scale, [angle])[0]
        return fv

    # -------------------------------------------------------------------- search
    def _coarse_search(self, prepared: _Prepared, image: np.ndarray) -> CoarseResult:
        th, tw = prepared.template.shape[:2]
        r = self.factor((th, tw), image.shape[:2], self.coarse_side)
        enc = self._encoded(prepared, r)
        f = self._memo("coarse", image, round(r, 6), lambda: self.image_features(image, r, project=True))
        return CoarseResult.of(r, enc, coarse_scores(enc, f.units[2], f.means[2], self.head.projection,
                                                     self.threads))

    def _candidate(self, prepared: _Prepared, image: np.ndarray, co: CoarseResult, y: int, x: int,
                   vi: int | None = None) -> _Candidate:
        """The coarse peak at stride-8 cell ``(y, x)`` (of variant ``vi``, by default the best
        there), refined, with its statistics."""
        vi = int(co.best_v[y, x]) if vi is None else int(vi)
        v = co.enc.variants[vi]
        m = co.scores[vi]
        cy = y + subcell1(m[:, x], y)
        cx = x + subcell1(m[y, :], x)
        hm = similarity(v, co.r, cy, cx)
        peak = float(co.scores[vi, y, x])
        refined, fine_cos, share, ver = 0, 0.0, 0.0, 0.0
        if self.refine:
            hm, refined, fine_cos, share, ver = self._fine(prepared, image, hm, co.r)
        stats = MatchStats(peak=peak, contrast=(peak - co.med) / co.spread, fine_cos=fine_cos, inliers=share,
                           verify=ver, stages=refined / max(1, len(_STAGES)))
        return _Candidate(hm, stats, v, refined)

    def _best(self, prepared: _Prepared, image: np.ndarray) -> _Candidate:
        """The best candidate: the strongest coarse peak, unless its refined verification is below
        ``sure``; then the strongest peak's best variant of another scale and the next peaks (up
        to ``candidates`` in all) are refined too, and the best verified one wins."""
        co = self._coarse_search(prepared, image)
        cells = peaks(co.best, self.candidates)
        first = self._candidate(prepared, image, co, *cells[0])
        if not _DOUBT <= first.stats.verify < self.sure or self.candidates == 1:
            return first
        y, x = cells[0]
        variants = co.enc.variants
        other_scale = [i for i in np.argsort(-co.scores[:, y, x])
                       if variants[i].scale != first.variant.scale]
        tries = [(y, x, other_scale[0])] if other_scale else []
        tries += [(cy, cx, None) for cy, cx in cells[1:]]
        others = [self._candidate(prepared, image, co, *t) for t in tries[: self.candidates - 1]]
        return max([first] + others, key=lambda c: c.stats.verify)

    def _candidates(self, prepared: _Prepared, image: np.ndarray, n: int) -> list[_Candidate]:
        co = self._coarse_search(prepared, image)
        return [self._candidate(prepared, image, co, y, x) for y, x in peaks(co.best, n)]

    def _fine(self, prepared: _Prepared, image: np.ndarray, hm: np.ndarray, r_coarse: float
              ) -> tuple[np.ndarray, int, float, float, float]:
        """Refine ``hm`` at strides 8, 4 and 2 on the region around it, at the finer factor
        (``template_side``); before the first two stages the template is rendered afresh at the
        current scale and angle, since low-level features are not invariant to them.

        Returns:
            ``(homography, stages accepted, mean cosine and inlier share of the stride-4 stage,
            verification score of the final geometry)``.
        """
        th, tw = prepared.template.shape[:2]
        H, W = image.shape[:2]
        # The region is small: the template may be upscaled further than in the coarse search.
        rf = max(min(max(self.template_side / max(th, tw), self.template_side / 3.5 / min(th, tw)),
                     2.0 * self.max_upscale), r_coarse)
        poly = geometry.template_polygon(hm, (th, tw))
        (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
        pad = 0.2 * max(x1 - x0, y1 - y0) + 16.0 / r_coarse
        x0, y0 = int(max(0, math.floor(x0 - pad))), int(max(0, math.floor(y0 - pad)))
        x1, y1 = int(min(W, math.ceil(x1 + pad))), int(min(H, math.ceil(y1 + pad)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return hm, 0, 0.0, 0.0, 0.0
        f = self.image_features(image[y0:y1, x0:x1], rf)
        origin = (float(x0), float(y0))
        done, fine_cos, share = 0, 0.0, 0.0
        fv = None
        for k, (level, radius) in enumerate(_STAGES):
            if k < _RERENDER:
                fv = self._fine_variant(prepared, rf, *similarity_params(hm))
            new, cos_, share_ = refine_stage(hm, fv, f.rxy, origin, level, f.units[level], f.means[level],
                                             (th, tw), radius=radius, distinct=_DISTINCT)
            if level == 1:
                fine_cos, share = cos_, share_
            if new is not None:  # a failed stage keeps the transform; the next, finer one may hold
                hm, done = new, done + 1
        return hm, done, fine_cos, share, verify(hm, fv, f.rxy, origin, f.units[1], f.means[1])

    # ------------------------------------------------------------------- results
    def _to_match(self, c: _Candidate, p: float, template_hw: tuple[int, int],
                  image_hw: tuple[int, int]) -> Match:
        scale, angle = similarity_params(c.hm)
        extra = dict(presence=round(float(p), 4), peak=round(float(c.stats.peak), 4), scale=round(scale, 4),
                     angle=round(angle, 2), refined=c.refined)
        return self._from_homography(c.hm, template_hw, image_hw, float(p), **extra)

    def _match(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray) -> Match:
        c = self._best(prepared, image)
        p = float(self.head.probability([c.stats])[0])
        if p < self.presence_threshold or not geometry.plausible_homography(c.hm, template.shape[:2], image.shape[:2]):
            return Match.absent(image.shape[:2], score=p, method=self.name, presence=round(p, 4),
                                peak=round(float(c.stats.peak), 4),
                                candidate=np.asarray(c.hm, float).round(6).tolist())
        return self._to_match(c, p, template.shape[:2], image.shape[:2])

    def statistics(self, template: np.ndarray, image: np.ndarray) -> tuple[MatchStats, np.ndarray]:
        """``(statistics, homography (3, 3))`` of the best candidate — what the presence head
        reads (used to train it)."""
        c = self._best(self.prepare(template), image)
        return c.stats, c.hm

    def _match_all(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        cands = self._candidates(prepared, image, max(1, max_instances) * 3)
        ps = self.head.probability([c.stats for c in cands])
        floor = self.presence_threshold if min_score is None else max(self.presence_threshold, min_score)
        ms = [self._to_match(c, p, template.shape[:2], image.shape[:2]) for c, p in zip(cands, ps)
              if p >= floor and geometry.plausible_homography(c.hm, template.shape[:2], image.shape[:2])]
        keep = geometry.nms([m.polygon for m in ms], [m.score for m in ms], iou_threshold=0.3)
        return [ms[i] for i in keep[:max_instances]]
