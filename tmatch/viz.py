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
            fps: float | None = None, names: Sequence[str] | None = None) -> np.ndarray:
    """Draw one or several matches on a copy of an RGB image ``(H, W, 3)``.

    The mask is tinted, the polygon outlined and each match's tag (its name from ``names``, when
    given, and its score) written beside its own box: above it, else below or inside it, moved
    in from the image's edges and away from the tags already placed, so that it is never cut off
    and two matches never write over each other. ``label`` captions the whole picture (bottom
    left); ``truth``, an optional ground-truth polygon ``(4, 2)``, is outlined in blue; ``fps``
    adds a counter.
    """
    out = np.ascontiguousarray(image.copy())
    matches = [match] if isinstance(match, Match) else list(match)
    tags = list(names) if names is not None else [None] * len(matches)
    if len(tags) != len(matches):
        raise ValueError(f"{len(tags)} names for {len(matches)} matches")
    for m in matches:
        if m.found and m.mask.shape == out.shape[:2] and m.mask.any():
            tint = np.array(color, np.float32)
            sel = m.mask
            out[sel] = (out[sel].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    if truth is not None:
        _poly(out, truth, BLUE, 1)
    thick = max(1, round(max(out.shape[:2]) / 400))
    taken: list[tuple[int, int, int, int]] = []
    if label:  # the caption's corner is taken before the tags are placed
        taken.append(_text_rect(out, label, (6, out.shape[0] - 8)))
    for m, tag in zip(matches, tags):
        if m.found and m.polygon is not None and np.isfinite(np.asarray(m.polygon, np.float64)).all():
            _poly(out, m.polygon, color, thick + 1)
            s = f"{tag} {m.score:.2f}" if tag else f"{m.score:.2f}"
            org = _place_tag(out, s, np.asarray(m.polygon, np.float64), taken)
            taken.append(_text_rect(out, s, org))
            text(out, s, org, color)
    if not any(m.found for m in matches):
        text(out, "not found", (6, 40), RED)
    if label:
        text(out, label, (6, out.shape[0] - 8), WHITE)
    if fps is not None:
        label_fps = f"{fps:.1f} FPS"
        (tw, _), _ = cv2.getTextSize(label_fps, cv2.FONT_HERSHEY_SIMPLEX, _scale(out), 3)
        text(out, label_fps, (max(6, out.shape[1] - tw - 8), 18), WHITE)
    return out


def _text_size(img: np.ndarray, s: str) -> tuple[int, int, int]:
    """``(width, height above the baseline, depth below it)`` of ``s`` as :func:`text` writes it."""
    (tw, th), base = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, _scale(img), 3)
    return tw, th + 1, base + 1


def _text_rect(img: np.ndarray, s: str, org: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` covered by ``s`` written at baseline origin ``org``."""
    tw, th, base = _text_size(img, s)
    return int(org[0]), int(org[1]) - th, int(org[0]) + tw, int(org[1]) + base


def _place_tag(img: np.ndarray, s: str, polygon: np.ndarray,
               taken: Sequence[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Where a match's tag goes: the first of above the box, below it, inside its top and
    inside its bottom (left-aligned, then right-aligned) that lies wholly in the image and
    overlaps no tag already placed; else the least overlapping one. Always inside the image."""
    H, W = img.shape[:2]
    tw, th, base = _text_size(img, s)
    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    xs = [x0, x1 - tw]
    ys = [y0 - base - 3, y1 + th + 3, y0 + th + 3, y1 - base - 3]
    best, best_cost = None, None
    for y in ys:
        for x in xs:
            cx = int(np.clip(round(x), 2, max(2, W - tw - 2)))
            cy = int(np.clip(round(y), th + 2, max(th + 2, H - base - 2)))
            r = (cx, cy - th, cx + tw, cy + base)
            moved = abs(cx - x) + abs(cy - y)
            overlap = sum(max(0, min(r[2], t[2]) - max(r[0], t[0])) * max(0, min(r[3], t[3]) - max(r[1], t[1]))
                          for t in taken)
            cost = (overlap, moved)
            if best_cost is None or cost < best_cost:
                best, best_cost = (cx, cy), cost
            if overlap == 0 and moved < 1:
                return cx, cy
    return best  # type: ignore[return-value]


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
