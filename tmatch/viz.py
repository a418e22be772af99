"""Pictures only: overlays, panels and plots drawn from results — no matching happens here.

Shared by the CLI, the benchmark, the demo and the video command.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from tmatch.match import Match

GREEN = (40, 220, 90)
RED = (235, 60, 60)
BLUE = (60, 140, 255)
WHITE = (255, 255, 255)


def overlay(image: np.ndarray, match: Match | Sequence[Match], color: tuple[int, int, int] = GREEN,
            alpha: float = 0.35, label: str | None = None, truth: np.ndarray | None = None,
            fps: float | None = None) -> np.ndarray:
    """Draw one or several matches on a copy of an RGB image ``(H, W, 3)``.

    The mask is tinted, the polygon outlined and the score written next to it. ``truth``, an
    optional ground-truth polygon ``(4, 2)``, is outlined in blue; ``fps`` adds a counter.
    """
    out = np.ascontiguousarray(image.copy())
    matches = [match] if isinstance(match, Match) else list(match)
    for m in matches:
        if m.found and m.mask.shape == out.shape[:2] and m.mask.any():
            tint = np.array(color, np.float32)
            sel = m.mask
            out[sel] = (out[sel].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    if truth is not None:
        _poly(out, truth, BLUE, 1)
    thick = max(1, round(max(out.shape[:2]) / 400))
    for m in matches:
        if m.found and m.polygon is not None:
            _poly(out, m.polygon, color, thick + 1)
            x, y = np.asarray(m.polygon).min(axis=0)
            text(out, f"{m.score:.2f}", (int(x), int(y) - 4), color)
    if not any(m.found for m in matches):
        text(out, "not found", (6, 40), RED)
    if label:
        text(out, label, (6, out.shape[0] - 8), WHITE)
    if fps is not None:
        label_fps = f"{fps:.1f} FPS"
        (tw, _), _ = cv2.getTextSize(label_fps, cv2.FONT_HERSHEY_SIMPLEX, _scale(out), 3)
        text(out, label_fps, (max(6, out.shape[1] - tw - 8), 18), WHITE)
    return out


def _poly(img: np.ndarray, polygon: np.ndarray, color, thickness: int) -> None:
    p = np.asarray(polygon, np.float64)
    if not np.isfinite(p).all():
        return
    pts = np.round((p - 0.5) * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [pts], True, color, thickness, cv2.LINE_AA, shift=4)


def text(img: np.ndarray, s: str, org: tuple[int, int], color=WHITE, scale: float | None = None) -> None:
    """Write ``s`` at ``org`` with a dark outline so it reads on any background."""
    scale = scale or _scale(img)
    x, y = int(org[0]), int(max(12, org[1]))
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _scale(img: np.ndarray) -> float:
    return max(0.4, min(img.shape[:2]) / 700)


def fit(img: np.ndarray, height: int) -> np.ndarray:
    """Resize an RGB image to ``height`` keeping its aspect ratio (grayscale/bool become RGB)."""
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    nw = max(1, round(w * height / h))
    return cv2.resize(img, (nw, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


def panel(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, height: int = 240,
          gap: int = 4) -> np.ndarray:
    """Images side by side at a common height, each with an optional title."""
    tiles = []
    for i, im in enumerate(images):
        t = fit(im, height).copy()
        if titles and i < len(titles) and titles[i]:
            text(t, titles[i], (4, 16))
        tiles.append(t)
        tiles.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((height, 1, 3), np.uint8)


def grid(rows: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Stack panels vertically, padding them to the widest."""
    w = max(r.shape[1] for r in rows)
    out = []
    for r in rows:
        pad = np.full((r.shape[0], w - r.shape[1], 3), 255, np.uint8)
        out += [np.concatenate([r, pad], axis=1), np.full((gap, w, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=0)
