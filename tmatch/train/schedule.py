"""The learning-rate schedule of a training run (a factor per optimiser step)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class LrSchedule:
    """Learning-rate factor per optimiser step (for ``LambdaLR``); see ``OptimSection``.

    >>> f = LrSchedule("step", steps_per_epoch=10, total_steps=100, milestones=[2], gamma=0.1)
    >>> f(19), f(20)
    (1.0, 0.1)
    """

    schedule: str
    steps_per_epoch: int
    total_steps: int
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_steps: int = 0
    min_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.schedule == "step":
            epoch = step // max(1, self.steps_per_epoch)
            return warm * self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.schedule == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            t = min(1.0, max(0.0, (step - self.warmup_steps) / span))
            return warm * (self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))
        return warm
