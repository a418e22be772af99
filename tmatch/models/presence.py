"""The ``neural`` matcher's learned parts: the presence head and the coarse search's projection.

:class:`MatchStats` holds what the matcher measures about one candidate (typed: no list read by
position); :class:`PresenceHead` turns them into the probability that the template is there —
a logistic regression on standardised statistics, trained by ``tmatch train --preset neural``
(:mod:`tmatch.train.neural`) — and carries the feature projection ``(D, 40)`` learnt with it.
Both are stored in one safetensors file (``tmatch/weights/neural.safetensors``).

>>> head = PresenceHead.untrained()
>>> s = MatchStats(peak=0.6, contrast=4.0, fine_cos=0.7, inliers=0.8, verify=0.9, stages=1.0)
>>> round(float(head.probability([s])[0]), 3)
0.989
"""

from __future__ import annotations

import json
import os
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tmatch.errors import CheckpointError
from tmatch.files import atomic_save
from tmatch.models.logistic import LogisticHead


@dataclass(frozen=True)
class MatchStats:
    """What the presence head reads about one candidate of the ``neural`` matcher.

    Attributes:
        peak: coarse peak cosine.
        contrast: the peak's contrast to the rest of the coarse map, in standard deviations.
        fine_cos: mean cosine of the stride-4 refinement's correspondences.
        inliers: inlier share of the stride-4 refinement.
        verify: mean stride-4 cosine at the final geometry (verification score).
        stages: share of refinement stages that held.
    """

    peak: float
    contrast: float
    fine_cos: float
    inliers: float
    verify: float
    stages: float

    def as_array(self) -> np.ndarray:
        """``(len(STAT_NAMES),)`` float64, in :data:`STAT_NAMES` order."""
        return np.array(astuple(self), np.float64)


#: names of the statistics, in the order the head's weights are stored.
STAT_NAMES = tuple(f.name for f in fields(MatchStats))


def stats_matrix(stats: Sequence[MatchStats] | np.ndarray) -> np.ndarray:
    """``(N, len(STAT_NAMES))`` float64 from a list of :class:`MatchStats` or an array."""
    if isinstance(stats, np.ndarray):
        return stats.astype(np.float64).reshape(-1, len(STAT_NAMES))
    return np.stack([s.as_array() for s in stats]) if len(stats) else np.zeros((0, len(STAT_NAMES)))


@dataclass
class PresenceHead(LogisticHead):
    """Logistic presence head on standardised :class:`MatchStats` (a
    :class:`~tmatch.models.logistic.LogisticHead`), plus the feature projection.

    Attributes:
        weight: ``(len(STAT_NAMES),)`` weights of the standardised statistics.
        bias: scalar bias (includes the decision threshold: found means probability >= 0.5).
        mean: ``(len(STAT_NAMES),)`` statistics' means.
        std: ``(len(STAT_NAMES),)`` statistics' standard deviations.
        projection: ``(D, 40)`` projection of the stride-8 features, or ``None`` (all 40).
        meta: the file's metadata (data, recipe, metrics); ``{"untrained": True}`` without one.
    """

    projection: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def untrained(cls) -> PresenceHead:
        """The head used when no weights are installed: a threshold on the verification score."""
        n = len(STAT_NAMES)
        weight = np.zeros(n)
        weight[STAT_NAMES.index("verify")] = 10.0
        return cls(weight=weight, bias=-4.5, mean=np.zeros(n), std=np.ones(n), meta={"untrained": True})

    def probability(self, stats: Sequence[MatchStats] | np.ndarray) -> np.ndarray:
        """``N`` statistics (:class:`MatchStats` or an ``(N, len(STAT_NAMES))`` array) → ``(N,)``
        probabilities that the template is present."""
        return LogisticHead.probability(self, stats_matrix(stats))

    def with_projection(self, projection: np.ndarray | None) -> PresenceHead:
        """A copy with another feature projection (training fits it before the head)."""
        return PresenceHead(self.weight, self.bias, self.mean, self.std, projection, dict(self.meta))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PresenceHead:
        """Read a head written by :meth:`save`.

        Raises:
            CheckpointError: missing, unreadable or incompatible file.
        """
        from tmatch.models.weights import read_safetensors

        from tmatch.models.weights import wrong_matcher

        path = Path(path)
        meta, _ = read_safetensors(path, tensors=False)
        if meta.get("kind") != "neural-presence":
            raise CheckpointError(wrong_matcher(path, "neural"))
        meta, tensors = read_safetensors(path)
        names = json.loads(meta.get("stats", "[]"))
        if tuple(names) != STAT_NAMES:
            raise CheckpointError(f"{path} reads statistics {names}, this version computes {list(STAT_NAMES)}")
        try:
            weight = tensors["weight"].astype(np.float64).reshape(-1)
            bias = float(tensors["bias"].reshape(-1)[0])
            mean = tensors["mean"].astype(np.float64).reshape(-1)
            std = tensors["std"].astype(np.float64).reshape(-1)
        except KeyError as e:
            raise CheckpointError(f"{path} lacks tensor {e}") from None
        if any(len(a) != len(STAT_NAMES) for a in (weight, mean, std)):
            raise CheckpointError(f"{path}: presence head has the wrong size")
        proj = None
        if "projection" in tensors:
            proj = tensors["projection"].astype(np.float32)
            if proj.ndim != 2 or proj.shape[1] != 40 or not 1 <= proj.shape[0] <= 40:
                raise CheckpointError(f"{path}: projection must be (D, 40), got {proj.shape}")
        return cls(weight, bias, mean, std, proj, meta)

    def save(self, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
        """Write the head (and projection) atomically, with ``meta`` (default: its own) as the
        file's metadata; the file names its matcher (``matcher: neural``)."""
        from safetensors.numpy import save_file

        tensors = {"weight": np.asarray(self.weight, np.float32).reshape(-1),
                   "bias": np.asarray([self.bias], np.float32),
                   "mean": np.asarray(self.mean, np.float32).reshape(-1),
                   "std": np.asarray(self.std, np.float32).reshape(-1)}
        if self.projection is not None:
            tensors["projection"] = np.ascontiguousarray(self.projection, np.float32)
        info = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (meta or self.meta).items()}
        info.update(kind="neural-presence", matcher="neural", stats=json.dumps(list(STAT_NAMES)))
        return atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata=info))
