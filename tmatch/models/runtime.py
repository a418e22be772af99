"""Two interchangeable ways to run a network: PyTorch and onnxruntime.

Both take and return numpy arrays, in two steps: ``encode(query)`` (the template branch, once per
template) and ``search(images, encoding)`` (per image batch). ``dual-unet`` returns
``{"mask"}``; ``neural`` returns ``{"mask", "presence", "variant", "presences"}`` (see
:mod:`tmatch.models.export` for the shapes).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from tmatch.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from tmatch.models.config import ModelConfig

#: what to install when torch is missing.
TRAIN_EXTRA = 'pip install "tmatch[train]"'


def torch_or_none() -> Any:
    """The ``torch`` module, or ``None`` in a light install (``pip install tmatch``)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def onnx_session(graph: str | os.PathLike | bytes, threads: int | None, device: str = "cpu") -> Any:
    """The one onnxruntime session factory: a graph (path or bytes), quiet, operators run in
    sequence on ``threads`` intra-op threads (``None``: onnxruntime's default), no busy-waiting
    between operators, CUDA first when ``device == "cuda"``.

    Spinning threads steal the cores from whatever runs next (OpenCV in SIFT, the benchmark's
    other matchers, the video decoder). Measured here: a search graph 10.0 ms alone with
    spinning, 10.8 without; alternating with SIFT, 19.6 ms (and SIFT 46 -> 62 ms) with spinning,
    11.0 ms without.

    Raises:
        InputError: ``device == "cuda"`` and onnxruntime has no CUDA provider.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError("onnxruntime has no CUDA provider here; use runtime='torch' on the GPU")
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), so, providers=providers)


def require_torch(what: str) -> Any:
    """The ``torch`` module; without it, an error saying that ``what`` needs the train extra.

    Raises:
        InputError: torch is not installed.
    """
    torch = torch_or_none()
    if torch is None:
        raise InputError(f"{what} needs torch, which this install lacks: {TRAIN_EXTRA}")
    return torch


def _nvidia_gpu_present() -> bool:
    gpus = "/proc/driver/nvidia/gpus"
    return os.path.isdir(gpus) and bool(os.listdir(gpus))


def cuda_available() -> bool:
    """A CUDA GPU that torch or onnxruntime can use (``False`` without either). On a machine
    with no NVIDIA driver loaded this answers without importing torch (a second saved at start-up)."""
    if "torch" not in sys.modules and not _nvidia_gpu_present():
        return False
    torch = torch_or_none()
    if torch is not None:
        return bool(torch.cuda.is_available())
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def resolve_device(runtime: str, device: str) -> tuple[str, str]:
    """Check ``runtime`` (auto, torch, onnx) and ``device`` (auto, cpu, cuda) and resolve the
    device: ``(runtime lower-cased, "cpu" or "cuda")``.

    Raises:
        InputError: an unknown value, or CUDA asked for without a GPU.
    """
    runtime, device = str(runtime).lower(), str(device).lower()
    if runtime not in ("auto", "torch", "onnx"):
        raise InputError(f"runtime must be auto, torch or onnx, got {runtime!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {device!r}")
    if runtime == "torch":
        require_torch("runtime 'torch'")
    if device == "cuda" and not cuda_available():
        raise InputError("device 'cuda' requested but no CUDA GPU is available")
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    return runtime, device




class TorchRunner:
    """Runs the model with PyTorch (training device, GPU batches).

    Args:
        model: the network; it is moved to ``device`` and put in eval mode here.
        config: its config.
        device: ``"cpu"`` or ``"cuda"``.
        threads: CPU threads for the duration of each call (``None``: torch's default).
    """

    name = "torch"

    def __init__(self, model: nn.Module, config: ModelConfig, device: str = "cpu", threads: int | None = None):
        torch = require_torch("the torch runtime")
        self.config = config
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.threads = threads

    def _t(self, a: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device)

    def encode(self, query: np.ndarray) -> Any:
        """``(K, 3, q, q)`` float32 → the template encoding (opaque)."""
        import torch

        from tmatch.threads import torch_threads

        with torch_threads(self.threads), torch.inference_mode():
            q = self._t(query)
            if self.config.arch == "neural-seg":
                from tmatch.models.neural_seg import kernels_as_weight

                k8, k16 = self.model.encode_query(q)
                return kernels_as_weight(k8), kernels_as_weight(k16)
            return self.model.encode_query(q)

    def search(self, images: np.ndarray, encoding: Any) -> dict[str, np.ndarray]:
        """``(B, 3, S, S)`` float32 + encoding → dict of numpy outputs."""
        import torch

        from tmatch.threads import torch_threads

        with torch_threads(self.threads), torch.inference_mode():
            x = self._t(images)
            if self.config.arch == "neural-seg":
                out = self.model.match_weights(x, *encoding)
            else:
                out = {"mask": self.model.decode(x, encoding)}
            return {k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
                    for k, v in out.items()}


class OnnxRunner:
    """Runs the two exported graphs with onnxruntime (the CPU default).

    Args:
        graphs: :class:`~tmatch.models.export.OnnxGraphs`.
        threads: intra-op threads (``None``: onnxruntime's default, all cores).
        device: ``"cpu"``, or ``"cuda"`` to use the CUDA execution provider when available.
    """

    name = "onnx"

    def __init__(self, graphs: Any, threads: int | None = None, device: str = "cpu"):
        self.graphs = graphs
        self.config = graphs.config
        self.template = onnx_session(graphs.template, threads, device)
        self.searcher = onnx_session(graphs.search, threads, device)

    def encode(self, query: np.ndarray) -> list[np.ndarray]:
        q = np.ascontiguousarray(query, np.float32)
        return self.template.run(list(self.graphs.template_outputs), {"query": q})

    def search(self, images: np.ndarray, encoding: list[np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {"image": np.ascontiguousarray(images, np.float32)}
        feeds.update(dict(zip(self.graphs.search_inputs[1:], encoding)))
        outs = self.searcher.run(list(self.graphs.search_outputs), feeds)
        return dict(zip(self.graphs.search_outputs, outs))
