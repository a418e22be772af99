"""Training pictures, drawn from stored records: the loss/IoU curve and the prediction grid.

Nothing here trains or predicts: :func:`curves` takes the epoch records of ``logs.json`` and
:func:`prediction_row` takes arrays already computed, so a figure can be redrawn from a run
folder at any time (``tmatch.train.plots.curves(json.load(open("logs.json"))["epochs"])``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tmatch import viz


@dataclass
class PredictionView:
    """What one row of the ``epoch_N.png`` grid shows.

    Attributes:
        template: ``(h, w, 3)`` uint8 query.
        image: ``(H, W, 3)`` uint8 search image.
        truth: ``(H, W)`` bool true mask (all False for a negative pair).
        pred: ``(H, W)`` bool predicted mask.
        iou: IoU of ``pred`` and ``truth``.
        present: whether the template is in the image.
        presence: the predicted presence probability (``None`` for models without one).
    """

    template: np.ndarray
    image: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    iou: float
    present: bool
    presence: float | None = None


def tint(image: np.ndarray, mask: np.ndarray, color=viz.GREEN, alpha: float = 0.5) -> np.ndarray:
    """A copy of ``image`` ``(H, W, 3)`` with the ``(H, W)`` bool ``mask`` tinted."""
    out = np.ascontiguousarray(image.copy())
    m = np.asarray(mask, bool)
    if m.shape == out.shape[:2] and m.any():
        out[m] = (out[m].astype(np.float32) * (1 - alpha) + np.array(color, np.float32) * alpha
                  ).astype(np.uint8)
    return out


def prediction_row(v: PredictionView, height: int = 160) -> np.ndarray:
    """One panel: query, image, truth, prediction (titled with its IoU), like the original's
    ``epoch_N.png`` rows."""
    truth_title = "truth" if v.present else "truth: absent"
    pred_title = f"pred IoU {v.iou:.2f}"
    if v.presence is not None:
        pred_title += f" p={v.presence:.2f}"
    return viz.panel([v.template, v.image, tint(v.image, v.truth, viz.BLUE),
                      tint(v.image, v.pred, viz.GREEN)],
                     ["query", "image", truth_title, pred_title], height=height)


def prediction_grid(views: Sequence[PredictionView], height: int = 160) -> np.ndarray:
    """Rows of :func:`prediction_row` stacked into one RGB image."""
    if not views:
        return np.full((height, height, 3), 255, np.uint8)
    return viz.grid([prediction_row(v, height) for v in views])


def curves(records: Sequence[dict], title: str = "") -> np.ndarray:
    """Loss and IoU per epoch as an RGB image (the original's ``loss_iou.png``).

    Args:
        records: epoch records as in ``logs.json`` (``epoch``, ``train`` and ``valid`` dicts
            holding ``loss``, ``iou``...).
        title: figure title.

    Returns:
        ``(H, W, 3)`` uint8 picture.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.6), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax_l, ax_i = fig.subplots(1, 2)
    ep = [r["epoch"] + 1 for r in records]

    def series(part: str, key: str):
        return [r.get(part, {}).get(key, np.nan) if r.get(part) else np.nan for r in records]

    ax_l.plot(ep, series("train", "loss"), "o-", ms=3, label="train")
    if any(r.get("valid") for r in records):
        ax_l.plot(ep, series("valid", "loss"), "o-", ms=3, label="valid")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("loss")
    ax_l.grid(alpha=0.3)
    ax_l.legend()
    ax_i.plot(ep, series("train", "iou"), "o-", ms=3, label="train IoU")
    if any(r.get("valid") for r in records):
        ax_i.plot(ep, series("valid", "iou"), "o-", ms=3, label="valid IoU")
        ax_i.plot(ep, series("valid", "success"), "s--", ms=3, label="valid IoU>=0.5")
    ax_i.set_xlabel("epoch")
    ax_i.set_ylabel("IoU")
    ax_i.set_ylim(0, 1)
    ax_i.grid(alpha=0.3)
    ax_i.legend()
    for ax in (ax_l, ax_i):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
