"""One confidence for every matcher: the probability that its answer is right.

Each matcher's ``score`` has its own scale (a correlation peak, an inlier share, a presence
head's output). ``Match.confidence`` maps it, per matcher, to the share of answers that were
right at that score on our validation data (``benchmarks/calibrate.py``; fitted by isotonic
regression, one curve for "found" answers — right means polygon IoU ≥ 0.5 with the truth — and
one for "absent" answers — right means the template was not there). So ``confidence >= 0.9``
means the same thing whatever the method: about nine in ten such answers were right.

The curves live in ``tmatch/weights/calibration.json`` with the data they were fitted on; a
matcher without one (``orb``, ``akaze``, the networks) answers ``confidence=None``. They hold
for each matcher's default options: other options change what a score means.

>>> c = Curve(scores=(0.2, 0.5, 0.9), p=(0.1, 0.5, 0.95))
>>> round(c(0.7), 3), c(0.0), c(1.0)
(0.725, 0.1, 0.95)
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: the shipped curves
CALIBRATION_FILE = Path(__file__).resolve().parent / "weights" / "calibration.json"


@dataclass(frozen=True)
class Curve:
    """A monotone piecewise-linear map from score to probability (flat beyond its ends)."""

    scores: tuple[float, ...]
    p: tuple[float, ...]

    def __call__(self, score: float) -> float:
        if not np.isfinite(score):
            return float(self.p[0])
        return float(np.interp(float(score), self.scores, self.p))


@dataclass(frozen=True)
class Calibration:
    """A matcher's two curves: for answers that say found, and for answers that say absent."""

    found: Curve | None
    absent: Curve | None

    def confidence(self, found: bool, score: float) -> float | None:
        curve = self.found if found else self.absent
        return None if curve is None else round(curve(score), 4)


def _curve(d: dict[str, Any] | None) -> Curve | None:
    if not d or not d.get("scores"):
        return None
    return Curve(tuple(float(s) for s in d["scores"]), tuple(float(p) for p in d["p"]))


@functools.cache
def calibrations(path: str | None = None) -> dict[str, Calibration]:
    """``{matcher: Calibration}`` from the shipped file (empty when it is missing or unreadable:
    confidences are then ``None``, never an error)."""
    try:
        data = json.loads(Path(path or CALIBRATION_FILE).read_text())
        return {name: Calibration(_curve(c.get("found")), _curve(c.get("absent")))
                for name, c in data.get("matchers", {}).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def confidence(method: str, found: bool, score: float) -> float | None:
    """The probability that ``method``'s answer (``found`` with ``score``) is right, or ``None``
    when the method has no calibration."""
    c = calibrations().get(method)
    return None if c is None else c.confidence(bool(found), float(score))


def fit_curve(scores: np.ndarray, right: np.ndarray, increasing: bool = True, min_block: int = 8,
              max_knots: int = 24) -> Curve:
    """Isotonic regression of ``right`` (0/1) on ``scores`` (pool-adjacent-violators), blocks of
    at least ``min_block`` answers, each block's share smoothed as ``(k + 1) / (n + 2)`` so that
    no probability is 0 or 1 on finite data; knots at the blocks' mean scores.

    >>> s = np.linspace(0, 1, 200); r = (s > 0.5).astype(float)
    >>> c = fit_curve(s, r)
    >>> c(0.1) < 0.1 < 0.9 < c(0.9)
    True
    """
    order = np.argsort(scores, kind="stable")
    x = np.asarray(scores, float)[order]
    y = np.asarray(right, float)[order]
    if not increasing:
        y = 1.0 - y
    blocks: list[list[float]] = []  # [sum_y, n, sum_x]
    for xi, yi in zip(x, y):
        blocks.append([yi, 1.0, xi])
        while len(blocks) > 1 and (blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]
                                   or blocks[-2][1] < min_block):
            s, n, sx = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
            blocks[-1][2] += sx
    while len(blocks) > 1 and blocks[-1][1] < min_block:  # a thin last block joins its neighbour
        s, n, sx = blocks.pop()
        blocks[-1][0] += s
        blocks[-1][1] += n
        blocks[-1][2] += sx
    i = 1
    while i < len(blocks):  # tied scores: one knot
        if blocks[i][2] / blocks[i][1] - blocks[i - 1][2] / blocks[i - 1][1] <= 1e-9:
            s, n, sx = blocks.pop(i)
            blocks[i - 1][0] += s
            blocks[i - 1][1] += n
            blocks[i - 1][2] += sx
        else:
            i += 1
    while len(blocks) > max_knots:  # merge the closest neighbours in probability
        ps = [(b[0] + 1) / (b[1] + 2) for b in blocks]
        i = int(np.argmin(np.diff(ps)))
        s, n, sx = blocks.pop(i + 1)
        blocks[i][0] += s
        blocks[i][1] += n
        blocks[i][2] += sx
    knots = [b[2] / b[1] for b in blocks]
    # smoothing can undo the order of blocks of unequal sizes (0/8 -> 0.1, 0/30 -> 0.03): keep it
    p = np.maximum.accumulate([(b[0] + 1) / (b[1] + 2) for b in blocks]).tolist()
    if not increasing:
        p = [1.0 - v for v in p]
    return Curve(tuple(round(float(k), 5) for k in knots), tuple(round(float(v), 4) for v in p))
