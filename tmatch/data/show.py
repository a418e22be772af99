"""Pictures of pairs (for ``tmatch data show``): template | image with its truth. Drawing only."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from tmatch import viz
from tmatch.data.pairs import Pair


def draw_truth(pair: Pair, alpha: float = 0.35) -> np.ndarray:
    """The search image ``(H, W, 3)`` with the target mask tinted and the polygon outlined."""
    out = pair.image.copy()
    if pair.mask.any():
        sel = pair.mask
        out[sel] = (out[sel] * (1 - alpha) + np.array(viz.GREEN) * alpha).astype(np.uint8)
    if pair.polygon is not None and np.isfinite(pair.polygon).all():
        pts = np.round((np.asarray(pair.polygon) - 0.5) * 16).astype(np.int32).reshape(-1, 1, 2)
        thick = max(1, round(max(out.shape[:2]) / 300))
        cv2.polylines(out, [pts], True, viz.BLUE, thick, cv2.LINE_AA, shift=4)
        tl = tuple(int(v) for v in np.round(pair.polygon[0] - 0.5))
        cv2.circle(out, tl, thick + 2, viz.RED, -1, cv2.LINE_AA)  # the template's top-left corner
    return out


def pair_panel(pair: Pair, height: int = 240) -> np.ndarray:
    """One row: the template and the image with its truth, titled with the pair's provenance."""
    m = pair.meta
    head = f"{m.protocol} #{m.index}" + (f" {m.label}" if m.label else "")
    state = "present" if pair.present else "absent"
    return viz.panel([pair.template, draw_truth(pair)], [head, f"{m.image_name} ({state})"], height)


def pairs_sheet(pairs: Sequence[Pair], height: int = 240) -> np.ndarray:
    """Rows of :func:`pair_panel`, one per pair."""
    return viz.grid([pair_panel(p, height) for p in pairs])
