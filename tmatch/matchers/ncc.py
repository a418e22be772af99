"""Normalised cross-correlation (``cv2.matchTemplate``, TM_CCOEFF_NORMED).

One scale by default; ``scales`` lists the template scales tried, as for every matcher, and
``steps=N`` spreads N scales geometrically from ``min(scales)`` to ``max(scales)`` instead
(``scales=(0.5, 2), steps=9``). Score: the correlation peak in ``[-1, 1]``; below ``threshold``
the match is reported absent.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from tmatch import geometry
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.options import Option, work_options


class NCCMatcher(Matcher):
    """Template matching by normalised cross-correlation.

    Args:
        threshold: peak correlation under which ``found=False``.
        scales: template scales tried (image px per template px), as for the other matchers.
        steps: with ``steps > 1``, that many scales spaced geometrically from ``min(scales)``
            to ``max(scales)`` are tried instead of the list itself.
        color: correlate the three RGB channels instead of grayscale.
        relative_peak: ``match_all``'s default when nobody said how sure: instances must score
            at least this share of the best peak (and ``threshold``).

    One knob says how sure: ``threshold``. ``match`` reports the best peak when it reaches it.
    ``match_all`` reports every peak that reaches it once it is given (``threshold=`` when the
    matcher is made, or ``min_score`` for one call: on the command line ``--threshold`` and
    ``--min-score`` are the same knob); given neither, it keeps the peaks within
    ``relative_peak`` of the best (background peaks of a photo reach 0.6).

    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    >>> NCCMatcher().match(img[10:30, 20:50], img).box
    (20, 10, 30, 20)
    """

    name = "ncc"
    description = "normalised cross-correlation (cv2.matchTemplate), optional multi-scale"
    multi_instance = True
    #: one scale unless ``scales`` says otherwise: a template larger than the image is absent.
    scale_invariant = False

    OPTIONS = (
        Option("threshold", float, 0.5, "peak correlation under which found=False", low=-1.0, high=1.0),
        Option("scales", tuple, (1.0,), "template scales tried (image px per template px)", low=0.01,
               high=100.0),
        Option("steps", int, 1, "if > 1: that many scales, geometric, from min to max of `scales`",
               low=1, high=64),
        Option("color", bool, False, "correlate the three RGB channels instead of grayscale"),
        Option("relative_peak", float, 0.8, "match_all: least share of the best peak", low=0.0, high=1.0),
        *work_options(4096),
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.scales = tuple(sorted(set(self.scales)))
        self._sure_given = "threshold" in options  # match_all then keeps every peak over it

    def _scale_list(self) -> list[float]:
        lo, hi = self.scales[0], self.scales[-1]
        if self.steps == 1 or hi <= lo:
            return [float(s) for s in self.scales]
        return [float(s) for s in np.geomspace(lo, hi, self.steps)]

    def _prep(self, rgb: np.ndarray) -> np.ndarray:
        return rgb if self.color else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    def prepare(self, template: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Template resized to every scale: ``[(scale, (h', w'[, 3]) array)]``."""
        t = self._prep(template)
        h, w = t.shape[:2]
        out = []
        for s in self._scale_list():
            sw, sh = max(1, round(w * s)), max(1, round(h * s))
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            out.append((s, t if (sw, sh) == (w, h) else cv2.resize(t, (sw, sh), interpolation=interp)))
        return out

    def _maps(self, prepared: list[tuple[float, np.ndarray]], image: np.ndarray):
        img = self._memo("prep", image, self.color, lambda: self._prep(image))
        H, W = img.shape[:2]
        for s, t in prepared:
            th, tw = t.shape[:2]
            if th > H or tw > W or th < 2 or tw < 2:
                continue
            if float(t.std()) < 1e-3:
                continue  # a flat template correlates with nothing (NCC is undefined)
            r = geometry.ncc_map(img, t)  # flat image windows: no correlation (-1)
            yield s, (th, tw), r

    def _match(self, prepared, template: np.ndarray, image: np.ndarray) -> Match:
        best = None
        for s, (th, tw), r in self._maps(prepared, image):
            _, mx, _, loc = cv2.minMaxLoc(r)
            if best is None or mx > best[0]:
                best = (mx, s, loc, th, tw)
        if best is None:
            return Match.absent(image.shape[:2], method=self.name)
        score, s, (x, y), th, tw = best
        if score < self.threshold:
            return Match.absent(image.shape[:2], score=score, method=self.name, scale=s)
        poly = geometry.rect_polygon(x, y, tw, th)
        hm = np.array([[tw / template.shape[1], 0, x], [0, th / template.shape[0], y], [0, 0, 1]])
        return self._from_polygon(poly, image.shape[:2], score, homography=hm, scale=s)

    def _match_all(self, prepared, template: np.ndarray, image: np.ndarray, max_instances: int,
                   min_score: float | None) -> list[Match]:
        maps = list(self._maps(prepared, image))
        if min_score is not None:
            thr = float(min_score)
        elif self._sure_given:
            thr = self.threshold
        else:  # nobody said how sure: other peaks must come close to the best one
            best = max((float(r.max()) for _, _, r in maps), default=-1.0)
            thr = max(self.threshold, self.relative_peak * best)
        cands: list[tuple[float, float, int, int, int, int]] = []
        for s, (th, tw), r in maps:
            r = r.copy()
            for _ in range(max_instances * 4):
                _, mx, _, (x, y) = cv2.minMaxLoc(r)
                if mx < thr:
                    break
                cands.append((mx, s, x, y, th, tw))
                # Suppress the neighbourhood of this peak (half the template each way).
                r[max(0, y - th // 2):y + th // 2 + 1, max(0, x - tw // 2):x + tw // 2 + 1] = -1.0
        polys = [geometry.rect_polygon(x, y, tw, th) for _, _, x, y, th, tw in cands]
        keep = geometry.nms(polys, [c[0] for c in cands], iou_threshold=0.3)[:max_instances]
        out = []
        for i in keep:
            mx, s, x, y, th, tw = cands[i]
            hm = np.array([[tw / template.shape[1], 0, x], [0, th / template.shape[0], y], [0, 0, 1]])
            out.append(self._from_polygon(polys[i], image.shape[:2], mx, homography=hm, scale=s))
        return out
