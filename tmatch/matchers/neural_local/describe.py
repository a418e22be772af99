"""Stage 2 of ``neural-local``: rectified patches and their learned descriptors.

Each keypoint's patch is sampled on a 32×32 grid rotated by the keypoint's orientation and
spanning ``magnify × size`` pixels, from the level of a Gaussian pyramid whose pixel matches
the grid step (so large keypoints are not aliased). The network
(:class:`tmatch.models.descriptor.PatchDescriptor`) runs in onnxruntime from the graph that
training exports beside the weights (``neural-local.onnx``, checked against the weights' hash), or,
without it, in numpy from the safetensors weights — the same numbers, about 2.5× slower.

>>> import numpy as np
>>> from tmatch.matchers.neural_local.detect import Keypoints
>>> kp = Keypoints(np.array([[20.0, 20.0]]), np.array([8.0]), np.array([90.0]), np.array([1.0]))
>>> rectified_patches(np.zeros((40, 40), np.uint8), kp).shape
(1, 32, 32)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tmatch.errors import CheckpointError
from tmatch.files import file_sha256
from tmatch.matchers.neural_local.detect import Keypoints

PATCH = 32  # the network's input side (tmatch.models.descriptor.PATCH, without importing torch)


def _column(values: np.ndarray) -> np.ndarray:
    """``(N,)`` → ``(N, 1)`` float32, to broadcast against a ``(1, 32·32)`` grid."""
    return values[:, None].astype(np.float32)


def rectified_patches(image: np.ndarray, kps: Keypoints, magnify: float = 3.0) -> np.ndarray:
    """``(N, 32, 32)`` uint8 patches of a ``(H, W)`` uint8 image in each keypoint's frame.

    The patch's x axis points along the keypoint's orientation; its side is
    ``magnify * size`` pixels. Samples outside the image repeat the border.
    """
    n = len(kps)
    if n == 0:
        return np.zeros((0, PATCH, PATCH), np.uint8)
    side = np.maximum(magnify * kps.sizes, 1.0)
    step = side / PATCH
    level = np.clip(np.floor(np.log2(np.maximum(step, 1.0))).astype(int), 0, 6)
    g = ((np.arange(PATCH) + 0.5) / PATCH - 0.5).astype(np.float32)  # grid in units of the patch side
    u, v = (t.reshape(1, -1) for t in np.meshgrid(g, g))  # (1, 32·32): u along x, v along y
    a = np.deg2rad(kps.angles)
    # each patch is an affine map of the grid: x = x0 + ax·u + bx·v, y = y0 + ay·u + by·v
    ax, bx = side * np.cos(a), -side * np.sin(a)
    ay, by = side * np.sin(a), side * np.cos(a)
    out = np.zeros((n, PATCH, PATCH), np.uint8)
    pyramid = [image]
    for lv in np.unique(level):
        while len(pyramid) <= lv:
            prev = pyramid[-1]
            if min(prev.shape[:2]) < 2:
                pyramid.append(prev)
            else:
                pyramid.append(cv2.pyrDown(prev))
        idx = np.nonzero(level == lv)[0]
        img = pyramid[lv]
        sy, sx = image.shape[0] / img.shape[0], image.shape[1] / img.shape[1]
        for chunk in np.array_split(idx, -(-len(idx) // 1000)):  # remap maps stay < 32767 rows
            x0, y0 = (kps.points[chunk, 0] + 0.5) / sx - 0.5, (kps.points[chunk, 1] + 0.5) / sy - 0.5
            mx = _column(x0) + _column(ax[chunk] / sx) * u + _column(bx[chunk] / sx) * v
            my = _column(y0) + _column(ay[chunk] / sy) * u + _column(by[chunk] / sy) * v
            out[chunk] = cv2.remap(img, mx.reshape(-1, PATCH), my.reshape(-1, PATCH), cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE).reshape(-1, PATCH, PATCH)
    return out


def weights_digest(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a weights file (ties an exported graph to it)."""
    return file_sha256(path)[:16]


class Describer:
    """Runs the descriptor network: ``(N, 32, 32)`` uint8 patches → ``(N, D)`` float32.

    The weights are the safetensors file that training writes (the state dict of
    :class:`tmatch.models.descriptor.PatchDescriptor`). When the ONNX graph exported from them
    lies beside (``graph``: its path and the weights' digest it was exported from, from the
    settings JSON), onnxruntime runs it. Otherwise numpy does: batch norms are folded into the
    convolutions, and each convolution is one matrix product over the patches' 3×3 windows
    (``N·H·W × 9·C`` by ``9·C × C'``).

    Args:
        weights: ``neural-local.safetensors``.
        threads: onnxruntime's threads (default 1); numpy's BLAS keeps its own pool.
        graph: ``(path of the .onnx, digest of the weights it was exported from)`` or ``None``.
    """

    #: (stride, padding) of the convolutions, in order (see PatchDescriptor).
    LAYERS = ((2, 1), (2, 1), (1, 1), (2, 1), (1, 0))

    def __init__(self, weights: str | Path, threads: int | None = None,
                 graph: tuple[str | Path, str] | None = None):
        from safetensors.numpy import load_file

        path = Path(weights)
        self.session = None
        if not path.is_file():
            raise CheckpointError(f"descriptor weights not found: {path}")
        try:
            t = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read descriptor weights {path}: {e}") from None
        convs = sorted((k for k in t if k.endswith("weight") and t[k].ndim == 4),
                       key=lambda k: [int(x) if x.isdigit() else x for x in k.split(".")])
        if len(convs) != len(self.LAYERS):
            raise CheckpointError(f"{path} does not hold the neural-local descriptor "
                                  f"({len(convs)} convolutions, expected {len(self.LAYERS)})")
        self.layers = []
        for k, (stride, pad) in zip(convs, self.LAYERS):
            w = t[k].astype(np.float32)  # (C', C, kh, kw)
            bn = self._norm_of(t, k)
            mean, var = t[bn + ".running_mean"], t[bn + ".running_var"]
            scale = 1.0 / np.sqrt(var.astype(np.float32) + 1e-5)
            # rows in (kh, kw, C) order: the order _run lays out each window's values
            folded = (w * scale[:, None, None, None]).transpose(2, 3, 1, 0).reshape(-1, w.shape[0]).copy()
            self.layers.append((folded, (-mean * scale).astype(np.float32), w.shape[2], stride, pad))
        self.dim = int(self.layers[-1][0].shape[1])
        if graph is not None and Path(graph[0]).is_file() and weights_digest(path) == graph[1]:
            from tmatch.models.runtime import onnx_session

            self.session = onnx_session(graph[0], threads or 1)
            self.input = self.session.get_inputs()[0].name

    @property
    def runtime(self) -> str:
        """``"onnxruntime"`` or ``"numpy"``."""
        return "numpy" if self.session is None else "onnxruntime"

    @staticmethod
    def _norm_of(t: dict, conv_key: str) -> str:
        """The batch norm right after a convolution: ``a.b.0.weight`` → ``a.b.1``; ``a.5.weight`` → ``a.6``."""
        parts = conv_key.split(".")[:-1]
        parts[-1] = str(int(parts[-1]) + 1)
        name = ".".join(parts)
        if name + ".running_mean" not in t:
            raise CheckpointError(f"no batch norm after {conv_key} in the descriptor weights")
        return name

    def __call__(self, patches: np.ndarray, chunk: int = 512) -> np.ndarray:
        if len(patches) == 0:
            return np.zeros((0, self.dim), np.float32)
        run = self._run if self.session is None else self._run_graph
        return np.concatenate([run(patches[i:i + chunk]) for i in range(0, len(patches), chunk)])

    def _run_graph(self, patches: np.ndarray) -> np.ndarray:
        x = patches.astype(np.float32)[:, None]
        return self.session.run(None, {self.input: x})[0].astype(np.float32)

    def _run(self, patches: np.ndarray) -> np.ndarray:
        x = patches.astype(np.float32)
        n = len(x)
        mean = x.mean(axis=(1, 2), keepdims=True)
        std = x.std(axis=(1, 2), keepdims=True, ddof=1)
        x = ((x - mean) / (std + 1e-2))[..., None]  # (N, H, W, C) with C = 1
        last = len(self.layers) - 1
        for i, (w, b, k, stride, pad) in enumerate(self.layers):
            if pad:
                x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            ho, wo = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
            cols = np.concatenate([x[:, dy:dy + stride * (ho - 1) + 1:stride, dx:dx + stride * (wo - 1) + 1:stride]
                                   for dy in range(k) for dx in range(k)], axis=3)  # (N, ho, wo, k·k·C)
            y = cols.reshape(n * ho * wo, -1) @ w + b
            x = (np.maximum(y, 0.0) if i < last else y).reshape(n, ho, wo, -1)
        y = x.reshape(n, -1)
        return (y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-8)).astype(np.float32)
