"""The one logistic head and its one fit, shared by the presence heads of ``neural``
(:class:`tmatch.models.presence.PresenceHead`) and ``neural-local``
(:class:`tmatch.matchers.neural_local.presence.PresenceHead`).

``p = sigmoid(weight · (x - mean) / std + bias)``. :func:`fit_logistic` fits it by Newton's
method on standardised features, class-balanced (both classes weigh the same), L2-regularised
(the bias is not).

>>> import numpy as np
>>> x = np.r_[np.random.default_rng(0).normal(0, 1, (200, 1)), np.random.default_rng(1).normal(3, 1, (200, 1))]
>>> y = np.r_[np.zeros(200), np.ones(200)]
>>> head = fit_logistic(x, y)
>>> bool(head.probability(np.array([[0.0]]))[0] < 0.1 < 0.9 < head.probability(np.array([[3.0]]))[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tmatch.errors import TmatchError


@dataclass
class LogisticHead:
    """A logistic regression on standardised features.

    Attributes:
        weight: ``(F,)`` weights of the standardised features.
        bias: scalar bias (a decision threshold folded in: found means probability >= 0.5).
        mean, std: ``(F,)`` the features' means and standard deviations.
    """

    weight: np.ndarray
    bias: float
    mean: np.ndarray
    std: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(N, F)`` features → ``(N,)`` logits."""
        z = (np.asarray(x, np.float64).reshape(-1, len(self.weight)) - self.mean) / self.std
        return z @ self.weight + self.bias

    def probability(self, x: np.ndarray) -> np.ndarray:
        """``(N, F)`` features → ``(N,)`` probabilities."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -60, 60)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> LogisticHead:
    """Class-balanced, L2-regularised logistic regression by Newton's method on standardised
    features.

    Args:
        x: ``(N, F)`` features.
        y: ``(N,)`` 0/1 labels (both classes needed).

    Raises:
        TmatchError: only one class in ``y``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(np.unique(y)) < 2:
        raise TmatchError("a presence head needs both right matches and misses/negatives in its "
                          "training pairs; add negatives (wrong_query_rate) or pairs")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    pos = y.mean()
    sw = np.where(y > 0.5, 0.5 / pos, 0.5 / (1 - pos))
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2 * len(x))
    reg[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -60, 60)))
        g = z.T @ (sw * (p - y)) + reg * w
        h = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg + 1e-9)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return LogisticHead(weight=w[:-1], bias=float(w[-1]), mean=mean, std=std)
