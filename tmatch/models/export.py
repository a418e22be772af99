"""ONNX export of the neural matchers as two graphs, and a cache of exported graphs.

The template branch and the search branch are exported separately, so a video (or
``match_many``) runs the template graph once and only the search graph per frame:

``neural``
    ``template.onnx``: ``query (K, 3, T, T)`` → ``weight8 (W·K, 1, T/8, T/8)``,
    ``weight16 (2W·K, 1, T/16, T/16)`` — the correlation kernels of ``K`` template variants in
    grouped-convolution layout.
    ``search.onnx``: ``image (B, 3, S, S)``, ``weight8``, ``weight16`` → ``mask (B, 1, S, S)``
    logits, ``presence (B,)`` logits, ``variant (B,)`` int64, ``presences (B, K)`` logits.
``dual-unet``
    ``template.onnx``: ``query (1, 3, S, S)`` → ``q1 … q5`` (query encoder features).
    ``search.onnx``: ``image (B, 3, S, S)``, ``q1 … q5`` → ``mask (B, 1, S, S)`` logits.

``B`` and ``K`` are dynamic axes. The exporter is torch's TorchScript-based one
(``dynamo=False``): it needs nothing beyond torch and onnx, offline.

Cached exports live in ``$TMATCH_CACHE/onnx/<key>/`` (default ``~/.cache/tmatch/onnx``), where
``key`` is the SHA-256 of the weights file's bytes, the model config, the export format version
and the torch version: new weights give a new key, so a stale graph is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tmatch.errors import CheckpointError, TmatchError
from tmatch.files import atomic_dir, cache_root
from tmatch.models.config import ModelConfig

#: bump when the graphs' inputs/outputs change (invalidates every cached export).
EXPORT_VERSION = 1
OPSET = 17


@dataclass(frozen=True)
class OnnxGraphs:
    """Paths of an exported pair of graphs and the config they were exported from."""

    directory: Path
    template: Path
    search: Path
    config: ModelConfig
    template_inputs: tuple[str, ...]
    template_outputs: tuple[str, ...]
    search_inputs: tuple[str, ...]
    search_outputs: tuple[str, ...]

    @classmethod
    def read(cls, directory: str | os.PathLike) -> OnnxGraphs:
        """Open a folder written by :func:`export_onnx` (reads ``model.json``)."""
        d = Path(directory)
        info_path = d / "model.json"
        if not info_path.is_file():
            raise CheckpointError(f"no exported model in {d} (model.json missing)")
        try:
            info = json.loads(info_path.read_text())
            cfg = ModelConfig.from_dict(info["config"])
            out = cls(directory=d, template=d / "template.onnx", search=d / "search.onnx", config=cfg,
                      template_inputs=tuple(info["template_inputs"]),
                      template_outputs=tuple(info["template_outputs"]),
                      search_inputs=tuple(info["search_inputs"]),
                      search_outputs=tuple(info["search_outputs"]))
        except (KeyError, ValueError, TypeError, TmatchError) as e:
            raise CheckpointError(f"unusable export in {d}: {e}") from None
        if not (out.template.is_file() and out.search.is_file()):
            raise CheckpointError(f"export in {d} lacks template.onnx or search.onnx")
        return out


# --------------------------------------------------------------------- wrappers
class _NeuralTemplate(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, query: torch.Tensor):
        from tmatch.models.neural_seg import kernels_as_weight

        k8, k16 = self.net.encode_query(query)
        return kernels_as_weight(k8), kernels_as_weight(k16)


class _NeuralSearch(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, weight8: torch.Tensor, weight16: torch.Tensor):
        o = self.net.match_weights(image, weight8, weight16)
        return o["mask"], o["presence"], o["variant"], o["presences"]


class _DualTemplate(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, query: torch.Tensor):
        return tuple(self.net.encode_query(query))


class _DualSearch(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, q1, q2, q3, q4, q5):
        return self.net.decode(image, [q1, q2, q3, q4, q5])


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    module.eval()  # the exporter restores the wrapper's mode afterwards: keep it in eval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)


def export_onnx(model: nn.Module, config: ModelConfig, out_dir: str | os.PathLike) -> OnnxGraphs:
    """Export ``model`` as ``template.onnx`` + ``search.onnx`` (+ ``model.json``) into ``out_dir``.

    The model is exported on CPU in eval mode and left in eval mode on its original device.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    model = model.to("cpu").eval()
    S, T = config.input_size, config.template_size
    try:
        with torch.no_grad():
            image = torch.zeros(2, 3, S, S)
            if config.arch == "neural-seg":
                query = torch.zeros(3, 3, T, T)
                t_in, t_out = ["query"], ["weight8", "weight16"]
                s_in = ["image", "weight8", "weight16"]
                s_out = ["mask", "presence", "variant", "presences"]
                tpl, srch = _NeuralTemplate(model), _NeuralSearch(model)
                w8, w16 = tpl(query)
                _export(tpl, (query,), out / "template.onnx", t_in, t_out,
                        {"query": {0: "K"}, "weight8": {0: "WK"}, "weight16": {0: "W2K"}})
                _export(srch, (image, w8, w16), out / "search.onnx", s_in, s_out,
                        {"image": {0: "B"}, "weight8": {0: "WK"}, "weight16": {0: "W2K"},
                         "mask": {0: "B"}, "presence": {0: "B"}, "variant": {0: "B"},
                         "presences": {0: "B", 1: "K"}})
            else:
                query = torch.zeros(1, 3, S, S)
                qn = [f"q{i}" for i in range(1, 6)]
                t_in, t_out = ["query"], qn
                s_in, s_out = ["image", *qn], ["mask"]
                tpl, srch = _DualTemplate(model), _DualSearch(model)
                feats = tpl(query)
                _export(tpl, (query,), out / "template.onnx", t_in, t_out,
                        {"query": {0: "Bq"}, **{n: {0: "Bq"} for n in qn}})
                _export(srch, (image, *feats), out / "search.onnx", s_in, s_out,
                        {"image": {0: "B"}, "mask": {0: "B"}, **{n: {0: "Bq"} for n in qn}})
    except TmatchError:
        raise
    except Exception as e:  # exporter failures are not the user's fault but must stay readable
        raise TmatchError(f"ONNX export failed: {str(e).strip().splitlines()[0] if str(e) else e!r}") from e
    finally:
        model.to(device).eval()
    info = {"format": "tmatch-onnx", "version": EXPORT_VERSION, "opset": OPSET,
            "torch": torch.__version__, "config": config.to_dict(),
            "template_inputs": t_in, "template_outputs": t_out,
            "search_inputs": s_in, "search_outputs": s_out}
    (out / "model.json").write_text(json.dumps(info, indent=2) + "\n")
    return OnnxGraphs.read(out)


# ------------------------------------------------------------------------ cache
def weights_digest(model: nn.Module, weights_path: str | os.PathLike | None = None) -> str:
    """SHA-256 of the weights file, or of the in-memory state dict when there is no file."""
    if weights_path is not None:
        from tmatch.files import file_sha256

        return file_sha256(weights_path)
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(config: ModelConfig, digest: str) -> str:
    """The cache folder name for weights ``digest`` exported with ``config``."""
    payload = json.dumps({"weights": digest, "config": config.to_dict(), "version": EXPORT_VERSION,
                          "opset": OPSET, "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cached_export(model: nn.Module, config: ModelConfig, weights_path: str | os.PathLike | None = None,
                  root: str | os.PathLike | None = None) -> OnnxGraphs:
    """The exported graphs of this model, exporting once into the cache when needed.

    Concurrent processes are safe: each exports into its own temporary folder and renames it
    into place; the loser of a race uses the winner's folder.
    """
    base = (Path(root) if root is not None else cache_root()) / "onnx"
    final = base / cache_key(config, weights_digest(model, weights_path))
    if (final / "model.json").is_file():
        try:
            return OnnxGraphs.read(final)
        except CheckpointError:
            shutil.rmtree(final, ignore_errors=True)  # a damaged entry: export again
    with atomic_dir(final, replace=False) as tmp:
        export_onnx(model, config, tmp)
    return OnnxGraphs.read(final)


# ------------------------------------------------------------------- checking
def parity(model: nn.Module, config: ModelConfig, graphs: OnnxGraphs, template=None, image=None,
           variants: int = 3) -> float:
    """Largest absolute difference between PyTorch and onnxruntime outputs (mask logits, and
    presence logits for ``neural``) on one real photo pair (skimage's astronaut by default).

    Args:
        template: ``(h, w, 3)`` uint8 RGB; image: ``(H, W, 3)`` uint8 RGB.
        variants: ``neural`` template variants evaluated together (exercises the batch of kernels).
    """
    import numpy as np

    from tmatch.models.inputs import prepare_inputs, template_canvas
    from tmatch.models.runtime import OnnxRunner, TorchRunner

    if image is None:
        from skimage import data

        image = data.astronaut()
        template = image[100:220, 150:300]
    x = prepare_inputs(config, template, image)
    query = x.query[None].numpy()
    if config.arch == "neural-seg" and variants > 1:
        scales = np.geomspace(0.8, 1.25, variants)
        query = np.stack([template_canvas(config, template, x.template_scale * s, 10.0 * i).numpy()
                          for i, s in enumerate(scales)])
    images = np.stack([x.image.numpy(), x.image.numpy()[:, ::-1].copy()])
    ref_runner = TorchRunner(model, config, device=str(next(model.parameters()).device))
    ref = ref_runner.search(images, ref_runner.encode(query))
    onnx_runner = OnnxRunner(graphs)
    got = onnx_runner.search(images, onnx_runner.encode(query))
    diff = 0.0
    for k in ("mask", "presence"):
        if k in ref:
            diff = max(diff, float(np.abs(ref[k].astype(np.float64) - got[k]).max()))
    if "variant" in ref and not np.array_equal(ref["variant"], got["variant"]):
        diff = max(diff, float("inf"))
    return diff


def export_checkpoint(weights: str | os.PathLike, out_dir: str | os.PathLike,
                      arch: str | None = None, check: bool = True) -> tuple[OnnxGraphs, float | None]:
    """Export a checkpoint's network into ``out_dir``; optionally measure torch/ONNX parity.

    Args:
        weights: a ``.safetensors`` checkpoint.
        out_dir: destination folder (``template.onnx``, ``search.onnx``, ``model.json``).
        arch: when given, the checkpoint must hold this architecture.
        check: run :func:`parity` on a real photo.

    Returns:
        ``(graphs, max abs difference or None)``.
    """
    from tmatch.models.checkpoint import load_checkpoint

    model, config, _ = load_checkpoint(weights)
    if arch is not None and config.arch != arch:
        raise CheckpointError(f"{weights} holds the {config.arch!r} matcher's network, not {arch!r}; "
                              f"export it with --method {config.arch} (or without --method)")
    out = Path(out_dir)
    check_export_dir(out)
    diff = None
    # Built under a hidden name, renamed into place when complete: a killed re-export leaves
    # the previous folder whole, never a mix of old and new graphs.
    with atomic_dir(out) as tmp:
        graphs = export_onnx(model, config, tmp)
        if check:
            diff = parity(model, config, graphs)
    return OnnxGraphs.read(out), diff


#: what an export folder holds (a folder holding anything else is not replaced).
EXPORT_FILES = frozenset({"template.onnx", "search.onnx", "model.json", "features.onnx",
                          "presence.json"})


def check_export_dir(out: str | os.PathLike) -> Path:
    """Refuse an export destination that is a file, or a folder holding other files than an
    earlier export (replacing it would delete them).

    Raises:
        InputError: one line saying what to do instead.
    """
    from tmatch.errors import InputError
    from tmatch.outputs import check_output

    out = check_output(out, "--out", "folder")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in EXPORT_FILES
                       and not p.name.startswith("."))
        if other:
            raise InputError(f"--out {out} holds other files than an export ({', '.join(other[:3])}"
                             f"{'...' if len(other) > 3 else ''}); give a new or an export folder")
    return out
