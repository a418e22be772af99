"""What a training run reports: one :class:`EpochRecord` per epoch (``logs.json``) and the
:class:`TrainResult` of :func:`tmatch.train.loop.train`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class EpochRecord:
    """What one epoch did (an entry of ``logs.json``).

    Attributes:
        epoch: 0-based epoch number.
        lr: learning rate at the end of the epoch.
        train: training means (``loss``, ``dice``, ``bce``, ``presence``, ``iou``, ...).
        valid: validation means (``loss``, ``iou``, ``success``, ``iou_pooled``,
            ``presence_acc``), or ``None`` without validation pairs.
        steps: optimiser steps taken in the epoch.
        global_step: steps since the start of training, at the end of the epoch.
        time_s: wall time of the epoch (training and validation).
        pairs_per_s: training pairs per second over all processes.
        step_loss: the main process's loss at each step.
        best: whether this epoch's checkpoint became ``best``.
    """

    epoch: int
    lr: float
    train: dict[str, float]
    valid: dict[str, float] | None
    steps: int
    global_step: int
    time_s: float
    pairs_per_s: float
    step_loss: list[float] = field(default_factory=list)
    best: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self, epochs: int) -> str:
        """One line for the console."""
        s = f"epoch {self.epoch + 1}/{epochs}  loss {self.train['loss']:.4f}"
        if self.valid:
            s += f"  valid loss {self.valid['loss']:.4f} IoU {self.valid['iou']:.3f}" \
                 f" IoU>=0.5 {self.valid['success']:.3f}"
            if "presence_acc" in self.valid:
                s += f" presence {self.valid['presence_acc']:.3f}"
        s += f"  lr {self.lr:.2e}  {self.pairs_per_s:.1f} pairs/s  {self.time_s:.1f}s"
        return s + ("  *best" if self.best else "")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run folder.
        records: every epoch's :class:`EpochRecord` (including epochs before a resume).
        best_epoch: epoch of ``best.safetensors``.
        best_score: its monitored metric.
        last: path of ``last.safetensors``.
        best: path of ``best.safetensors``.
    """

    out_dir: Path
    records: list[EpochRecord]
    best_epoch: int | None
    best_score: float | None
    last: Path
    best: Path
