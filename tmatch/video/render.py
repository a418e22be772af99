"""The picture written and shown for each frame: the overlay, or four panels side by side."""

from __future__ import annotations

import numpy as np

from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.video.formats import LAYOUTS


def render_frame(image: np.ndarray, match: Match | None, template: np.ndarray,
                 layout: str = "overlay", fps: float | None = None, label: str | None = None,
                 panel_height: int | None = None) -> np.ndarray:
    """The picture written for one frame.

    Args:
        image: ``(H, W, 3)`` RGB frame.
        match: its result (or the last one, for frames skipped by ``every``), ``None`` for none.
        template: ``(h, w, 3)`` RGB.
        layout: ``"overlay"`` (the frame with mask tint, polygon, score, FPS: ``(H, W, 3)``) or
            ``"panels"`` (query | frame | mask | overlay side by side, ``panel_height`` high,
            default ``min(H, 360)``).
    """
    from tmatch import viz

    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    ov = viz.overlay(image, [] if match is None else match, label=label, fps=fps)
    if layout == "overlay":
        return ov
    hw = image.shape[:2]
    mask = match.mask if (match is not None and match.found and match.mask.shape == hw) \
        else np.zeros(hw, bool)
    height = int(panel_height or min(hw[0], 360))
    titles = ["query", "frame", "mask", "overlay"]
    return viz.panel([template, image, mask, ov], titles, height=height)
