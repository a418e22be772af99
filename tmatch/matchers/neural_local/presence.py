"""Stage 4 of ``neural-local``: a learned presence head — is the fitted homography the template?

A logistic regression on :meth:`Verified.stats` (inlier count, inlier ratio, inlier descriptor
distance, spread over the template, plausible geometry): the shared
:class:`~tmatch.models.logistic.LogisticHead`, fitted by the shared fit in ``tmatch train
--preset neural-local`` and shipped in the matcher's JSON config (raw-statistics weights: the
standardisation is folded in).

>>> import numpy as np
>>> head = PresenceHead(np.array([1.0, 0, 0, 0, 0]), -2.0)
>>> round(head.probability(np.array([np.log1p(20), 0, 0, 0, 0])), 2)
0.74
"""

from __future__ import annotations

import numpy as np

from tmatch.models.logistic import LogisticHead

#: names of the statistics, in order (see ``Verified.stats``).
STATS = ("log_inliers", "inlier_ratio", "inlier_distance", "spread", "plausible")


class PresenceHead(LogisticHead):
    """``p = sigmoid(w · stats + b)`` on raw statistics; found when ``p >= 0.5``."""

    def __init__(self, weights: np.ndarray, bias: float):
        w = np.asarray(weights, np.float64).reshape(-1)
        super().__init__(weight=w, bias=float(bias), mean=np.zeros(len(w)), std=np.ones(len(w)))

    @property
    def weights(self) -> np.ndarray:
        """The raw-statistics weights."""
        return self.weight

    @classmethod
    def folded(cls, head: LogisticHead) -> "PresenceHead":
        """``head`` (standardised features) with its standardisation folded into the weights."""
        w = head.weight / head.std
        return cls(w, float(head.bias - np.dot(w, head.mean)))

    def probability(self, stats: np.ndarray) -> float:  # type: ignore[override]
        """One statistics vector → its probability."""
        return float(LogisticHead.probability(self, np.asarray(stats, np.float64))[0])

    def to_dict(self) -> dict:
        return {"stats": list(STATS), "weights": [float(x) for x in self.weights], "bias": float(self.bias)}

    @classmethod
    def from_dict(cls, d: dict) -> "PresenceHead":
        w = np.asarray(d["weights"], np.float64)
        if w.shape != (len(STATS),):
            raise ValueError(f"presence head needs {len(STATS)} weights, got {w.shape}")
        return cls(w, float(d["bias"]))

    @classmethod
    def untrained(cls) -> "PresenceHead":
        """A fallback used only when asked for (``allow_untrained``): about 8 inliers and sane geometry."""
        return cls(np.array([3.0, 0.0, 0.0, 0.0, 4.0]), -3.0 * np.log1p(8.0) - 4.0 + 0.0)
