"""Stage 4 of ``neural-local``: a learned presence head — is the fitted homography the template?

A logistic regression on :meth:`Verified.stats` (inlier count, inlier ratio, inlier descriptor
distance, spread over the template, plausible geometry). Its weights are fitted by gradient
descent in ``tmatch train --preset neural-local`` and shipped in the matcher's JSON config.

>>> import numpy as np
>>> head = PresenceHead(np.array([1.0, 0, 0, 0, 0]), -2.0)
>>> round(head.probability(np.array([np.log1p(20), 0, 0, 0, 0])), 2)
0.74
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: names of the statistics, in order (see ``Verified.stats``).
STATS = ("log_inliers", "inlier_ratio", "inlier_distance", "spread", "plausible")


@dataclass
class PresenceHead:
    """``p = sigmoid(w · stats + b)``; found when ``p >= 0.5``."""

    weights: np.ndarray
    bias: float

    def probability(self, stats: np.ndarray) -> float:
        z = float(np.dot(self.weights, stats) + self.bias)
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))

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
