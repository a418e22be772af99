"""The ONE place that turns RGB arrays into network inputs and network masks back into image masks.

Used identically by the matchers (inference) and the torch datasets (training), so a model never
sees pictures prepared two different ways.

``dual-unet`` (the original): the search image is resized to ``S×S`` (aspect not kept); the query
is the template pasted in the centre of a black canvas of the search image's size, resized to
``S×S`` the same way.

``neural`` (ours): one scale factor ``r`` maps image *and* template pixels to network pixels, so
the template appears in its canvas at the size it has in the network's view of the image:
``r = min(S / max(H, W), T / max(h, w))``. The image is resized by ``r`` and put in the top-left
corner of an ``S×S`` input (the rest is 0, the normalised mean colour); the template is resized
by ``r`` (times a pyramid scale, optionally rotated) about the centre of a ``T×T`` canvas whose
other pixels are :data:`QUERY_PAD`.

Normalisation: ``(rgb / 255 - mean) / std`` per channel (``config.mean``, ``config.std``).

>>> import numpy as np
>>> from tmatch.models.config import ModelConfig
>>> cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
>>> img = np.zeros((100, 200, 3), np.uint8)
>>> x = prepare_inputs(cfg, img[:20, :30], img)
>>> tuple(x.image.shape), tuple(x.query.shape), x.content_hw, x.scale
((3, 64, 64), (3, 32, 32), (32, 64), (0.32, 0.32))
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tmatch.errors import InputError
from tmatch.geometry import to_cv_homography
from tmatch.models.config import ModelConfig
from tmatch.models.neural_seg import QUERY_PAD

__all__ = [
    "QUERY_PAD",
    "NetInputs",
    "denormalize",
    "dual_query_canvas",
    "mask_to_image",
    "neural_scale",
    "normalize",
    "prepare_image",
    "prepare_inputs",
    "prepare_target",
    "template_canvas",
]


@dataclass
class NetInputs:
    """Network inputs for one (template, image) pair and what is needed to map results back.

    Attributes:
        image: ``(3, S, S)`` float32 normalised search input.
        query: ``(3, S, S)`` (dual-unet) or ``(3, T, T)`` (neural) float32 query.
        image_hw: ``(H, W)`` of the original search image.
        template_hw: ``(h, w)`` of the original template.
        scale: ``(sx, sy)`` network pixels per image pixel along x and y.
        content_hw: ``(rows, cols)`` of the ``S×S`` input covered by the image (top-left aligned);
            ``(S, S)`` when the image is stretched (dual-unet).
        template_scale: network pixels per template pixel in the query (the pyramid scale 1).
    """

    image: torch.Tensor
    query: torch.Tensor
    image_hw: tuple[int, int]
    template_hw: tuple[int, int]
    scale: tuple[float, float]
    content_hw: tuple[int, int]
    template_scale: float


# ------------------------------------------------------------------------ pixels
def _resize(rgb: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    w, h = int(wh[0]), int(wh[1])
    if (w, h) == (rgb.shape[1], rgb.shape[0]):
        return rgb
    shrink = w < rgb.shape[1] or h < rgb.shape[0]
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def normalize(config: ModelConfig, rgb: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB → ``(3, h, w)`` float32 ``(rgb / 255 - mean) / std``."""
    from tmatch.models.features import normalize_rgb

    return normalize_rgb(rgb, config.mean, config.std)


def denormalize(config: ModelConfig, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(3, h, w)`` normalised tensor → ``(h, w, 3)`` uint8 RGB (for pictures; pads become black)."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.transpose(1, 2, 0) * np.asarray(config.std, np.float32) + np.asarray(config.mean, np.float32)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def _check_rgb(a: np.ndarray, what: str) -> None:
    if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        got = getattr(a, "shape", type(a).__name__), getattr(a, "dtype", "")
        raise InputError(f"{what} must be an (H, W, 3) uint8 RGB array, got {got}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{what} is empty: {a.shape}")


# ---------------------------------------------------------------------- geometry
def neural_scale(config: ModelConfig, template_hw: tuple[int, int], image_hw: tuple[int, int]) -> float:
    """The ``neural`` factor ``r`` (network px per image px): the image fits ``S``, the template ``T``."""
    (h, w), (H, W) = template_hw, image_hw
    return min(config.input_size / max(H, W), config.template_size / max(h, w))


def prepare_image(config: ModelConfig, image: np.ndarray, template_hw: tuple[int, int]
                  ) -> tuple[torch.Tensor, tuple[float, float], tuple[int, int]]:
    """The search input alone: ``(3, S, S)`` tensor, ``scale (sx, sy)`` and ``content_hw``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        template_hw: ``(h, w)`` of the template (``neural`` shrinks the image for big templates).
    """
    _check_rgb(image, "image")
    S = config.input_size
    H, W = image.shape[:2]
    if config.arch == "dual-unet":
        x = normalize(config, _resize(image, (S, S)))
        return torch.from_numpy(x), (S / W, S / H), (S, S)
    r = neural_scale(config, template_hw, (H, W))
    nw, nh = min(S, max(1, round(W * r))), min(S, max(1, round(H * r)))
    x = np.zeros((3, S, S), np.float32)
    x[:, :nh, :nw] = normalize(config, _resize(image, (nw, nh)))
    return torch.from_numpy(x), (nw / W, nh / H), (nh, nw)


def dual_query_canvas(config: ModelConfig, template: np.ndarray, image_hw: tuple[int, int]) -> torch.Tensor:
    """The original's query: the template in the centre of a black ``(H, W)`` canvas, resized to
    ``S×S`` → ``(3, S, S)`` normalised."""
    _check_rgb(template, "template")
    H, W = int(image_hw[0]), int(image_hw[1])
    h, w = template.shape[:2]
    if h > H or w > W:
        raise InputError(f"template ({w}x{h}) is larger than the image ({W}x{H})")
    canvas = np.zeros((H, W, 3), np.uint8)
    y0, x0 = (H - h) // 2, (W - w) // 2
    canvas[y0:y0 + h, x0:x0 + w] = template
    S = config.input_size
    return torch.from_numpy(normalize(config, _resize(canvas, (S, S))))


def template_canvas(config: ModelConfig, template: np.ndarray, scale: float, angle: float = 0.0
                    ) -> torch.Tensor:
    """The ``neural`` query: the template scaled by ``scale`` and rotated by ``angle`` degrees
    (clockwise on screen, as :func:`tmatch.geometry.random_homography`) about the centre of a
    ``T×T`` canvas; pixels outside the template are :data:`QUERY_PAD`.

    Args:
        template: ``(h, w, 3)`` uint8 RGB.
        scale: network pixels per template pixel (``r`` times a pyramid scale).
        angle: rotation in degrees.

    Returns:
        ``(3, T, T)`` float32.
    """
    _check_rgb(template, "template")
    if not (scale > 0 and np.isfinite(scale)):
        raise InputError(f"template scale must be positive, got {scale}")
    T = config.template_size
    h, w = template.shape[:2]
    # Resize first (INTER_AREA when shrinking: no aliasing), then place/rotate without scaling.
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    small = _resize(template, (tw, th))
    a = np.deg2rad(float(angle))
    c, s = np.cos(a), np.sin(a)
    # Our convention (pixel x covers [x, x+1)): centre of the template → centre of the canvas.
    hm = np.array([[1, 0, T / 2], [0, 1, T / 2], [0, 0, 1]]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) \
        @ np.array([[1, 0, -tw / 2], [0, 1, -th / 2], [0, 0, 1]])
    aff = to_cv_homography(hm)[:2]
    if angle == 0:
        # Axis-aligned: paste (or centre-crop) without resampling again.
        warped = np.zeros((T, T, 3), np.uint8)
        valid = np.zeros((T, T), bool)
        y0, x0 = (T - th) // 2, (T - tw) // 2
        sy, sx = max(0, -y0), max(0, -x0)
        dy, dx = max(0, y0), max(0, x0)
        ch, cw = min(th - sy, T - dy), min(tw - sx, T - dx)
        warped[dy:dy + ch, dx:dx + cw] = small[sy:sy + ch, sx:sx + cw]
        valid[dy:dy + ch, dx:dx + cw] = True
    else:
        warped = cv2.warpAffine(small, aff, (T, T), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ones = np.ones((th, tw), np.float32)
        valid = cv2.warpAffine(ones, aff, (T, T), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0) >= 0.5
    x = normalize(config, warped)
    x[:, ~valid] = QUERY_PAD
    return torch.from_numpy(x)


# ------------------------------------------------------------------- public API
def prepare_inputs(config: ModelConfig, template: np.ndarray, image: np.ndarray) -> NetInputs:
    """Network inputs for a (template, image) pair.

    Args:
        config: the model's configuration (arch, sizes, normalisation).
        template: ``(h, w, 3)`` uint8 RGB.
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        :class:`NetInputs` with ``image`` ``(3, S, S)`` and ``query`` ``(3, S, S)`` (dual-unet) or
        ``(3, T, T)`` (neural).
    """
    _check_rgb(template, "template")
    _check_rgb(image, "image")
    th, tw = template.shape[:2]
    H, W = image.shape[:2]
    x, scale, content = prepare_image(config, image, (th, tw))
    if config.arch == "dual-unet":
        q = dual_query_canvas(config, template, (H, W))
        tscale = scale[0]
    else:
        tscale = neural_scale(config, (th, tw), (H, W))
        q = template_canvas(config, template, tscale)
    return NetInputs(image=x, query=q, image_hw=(H, W), template_hw=(th, tw), scale=scale,
                     content_hw=content, template_scale=float(tscale))


def prepare_target(config: ModelConfig, mask: np.ndarray, inputs: NetInputs) -> torch.Tensor:
    """The ground-truth mask ``(H, W)`` bool in network coordinates: ``(1, S, S)`` float32 in {0, 1}."""
    m = np.asarray(mask)
    if m.shape != tuple(inputs.image_hw):
        raise InputError(f"mask shape {m.shape} differs from the image's {tuple(inputs.image_hw)}")
    S = config.input_size
    ch, cw = inputs.content_hw
    small = cv2.resize(m.astype(np.float32), (cw, ch), interpolation=cv2.INTER_AREA) >= 0.5
    out = np.zeros((1, S, S), np.float32)
    out[0, :ch, :cw] = small
    return torch.from_numpy(out)


def mask_to_image(config: ModelConfig, mask_prob: np.ndarray, inputs: NetInputs) -> np.ndarray:
    """A network mask ``(S, S)`` (probabilities or logits) → ``(H, W)`` float32 at the image's size."""
    p = np.asarray(mask_prob, np.float32)
    S = config.input_size
    if p.shape != (S, S):
        raise InputError(f"network mask must be ({S}, {S}), got {p.shape}")
    ch, cw = inputs.content_hw
    H, W = inputs.image_hw
    return cv2.resize(np.ascontiguousarray(p[:ch, :cw]), (W, H), interpolation=cv2.INTER_LINEAR)
