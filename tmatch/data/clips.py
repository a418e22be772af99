"""Synthetic clips: a real photo's cut-out moving, scaling and rotating over another real photo,
with the true polygon of every frame (the video tests and benchmark use them).

Shape letters: H×W frame, h×w template, N frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from tmatch import geometry, io
from tmatch.errors import InputError
from tmatch.match import Match

DEFAULT_FPS = 25.0

@dataclass
class SyntheticClip:
    """A generated clip with its ground truth.

    Attributes:
        frames: N frames ``(H, W, 3)`` RGB uint8.
        polygons: ``(N, 4, 2)`` true corners TL, TR, BR, BL of the template in each frame.
        homographies: ``(N, 3, 3)`` template-to-frame homographies.
        template: ``(h, w, 3)`` the template as cut out.
        fps: frame rate to write it at.
    """

    frames: list[np.ndarray]
    polygons: np.ndarray
    homographies: np.ndarray
    template: np.ndarray
    fps: float = DEFAULT_FPS

    def __len__(self) -> int:
        return len(self.frames)

    def truth_mask(self, i: int) -> np.ndarray:
        """``(H, W)`` bool mask of the template in frame ``i``."""
        return geometry.mask_from_polygon(self.polygons[i], self.frames[i].shape[:2])


def _paste(template: np.ndarray, background: np.ndarray, hm: np.ndarray) -> np.ndarray:
    """``template`` warped by ``hm`` (our convention) onto ``background``, edges anti-aliased."""
    hw = background.shape[:2]
    warped = geometry.warp_image(template, hm, hw).astype(np.float32)
    alpha = geometry.warp_image(np.ones(template.shape[:2], np.float32), hm, hw)[:, :, None]
    out = background.astype(np.float32) * (1 - alpha) + warped * alpha
    return out


def synthetic_clip(n_frames: int = 30, size: tuple[int, int] = (480, 640),
                   template: np.ndarray | None = None, background: np.ndarray | None = None,
                   scale: tuple[float, float] = (0.6, 1.0), rotation: float = 30.0,
                   noise: float = 2.0, fps: float = DEFAULT_FPS, seed: int = 0) -> SyntheticClip:
    """A real photo's cut-out moving, scaling and rotating across another real photo.

    Defaults: the astronaut's helmet and face (``skimage.data.astronaut``, 200×200) over the
    coffee cup photo (``skimage.data.coffee``) resized to ``size``. Along the clip the cut-out
    travels left to right on a wave, its scale swings from ``scale[0]`` to ``scale[1]`` and
    back, and it turns between ±``rotation`` degrees; it always stays inside the frame.
    Gaussian sensor noise of ``noise`` grey levels is added.

    Args:
        n_frames: N.
        size: ``(H, W)`` of the frames.
        template: ``(h, w, 3)`` RGB cut-out (default above).
        background: RGB photo resized to ``size`` (default above).

    >>> clip = synthetic_clip(n_frames=4, size=(120, 160))
    >>> len(clip), clip.frames[0].shape, clip.polygons.shape
    (4, (120, 160, 3), (4, 4, 2))
    """
    from skimage import data as skdata

    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    H, W = int(size[0]), int(size[1])
    if H < 16 or W < 16:
        raise InputError(f"clip size must be at least 16x16, got {W}x{H}")
    if not 0 < scale[0] <= scale[1]:
        raise InputError(f"scale must be 0 < lo <= hi, got {scale}")
    if template is None:
        template = skdata.astronaut()[30:230, 150:350]  # helmet and face
    tpl = io.as_rgb(template, "template")
    bg = io.as_rgb(skdata.coffee() if background is None else background, "background")
    interp = cv2.INTER_AREA if bg.shape[0] > H else cv2.INTER_LINEAR
    bg = cv2.resize(bg, (W, H), interpolation=interp)
    h, w = tpl.shape[:2]
    # Largest scale and any angle keep the cut-out's diagonal inside 90% of the short side.
    fit = min(1.0, 0.9 * min(H, W) / (np.hypot(h, w) * scale[1]))
    rng = np.random.default_rng(seed)
    frames, polys, hms = [], [], []
    for i in range(n_frames):
        t = i / (n_frames - 1) if n_frames > 1 else 0.0
        s = fit * scale[0] * (scale[1] / scale[0]) ** (0.5 * (1 - np.cos(2 * np.pi * t)))
        a = np.deg2rad(rotation * np.sin(2 * np.pi * t))
        c, si = np.cos(a) * s, np.sin(a) * s
        centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
        core = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1.0]]) @ centre
        corners = geometry.template_polygon(core, (h, w))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        cx = W * (0.3 + 0.4 * t)
        cy = H * (0.5 + 0.15 * np.sin(2 * np.pi * t))
        cx = float(np.clip(cx, 2 - lo[0], W - 2 - hi[0]))
        cy = float(np.clip(cy, 2 - lo[1], H - 2 - hi[1]))
        hm = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]]) @ core
        img = _paste(tpl, bg, hm)
        if noise > 0:
            img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        polys.append(geometry.template_polygon(hm, (h, w)))
        hms.append(hm)
    return SyntheticClip(frames, np.array(polys), np.array(hms), tpl, float(fps))


def clip_ious(matches: Sequence[Match | None], clip: SyntheticClip) -> np.ndarray:
    """Mask IoU of each match with the clip's truth, ``(N,)`` (0 for missing or not found)."""
    out = np.zeros(len(clip), np.float64)
    for i, m in enumerate(matches[:len(clip)]):
        if m is not None and m.found and m.mask.shape == clip.frames[i].shape[:2]:
            out[i] = geometry.iou(m.mask, clip.truth_mask(i))
    return out
