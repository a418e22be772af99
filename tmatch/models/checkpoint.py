"""Model weights for users: safetensors files that carry their own config, never pickles.

A checkpoint ``NAME.safetensors`` holds the model's state dict; its safetensors metadata holds
``tmatch_format``, ``tmatch_config`` (the :class:`~tmatch.models.config.ModelConfig` as JSON) and
``tmatch_meta`` (free JSON: data description, metrics, training recipe). A sidecar
``NAME.safetensors.json`` repeats config and meta for people and tools. Both are written
atomically (temporary file + ``os.replace``), so a crash never leaves a half-written checkpoint.

>>> import tempfile, pathlib
>>> from tmatch.models import ModelConfig, build_model
>>> cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
>>> p = save_checkpoint(pathlib.Path(tempfile.mkdtemp()) / "m.safetensors", build_model(cfg), cfg)
>>> model, cfg2, meta = load_checkpoint(p)
>>> cfg2 == cfg
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tmatch.errors import CheckpointError, TmatchError
from tmatch.files import atomic_write
from tmatch.models.config import OLD_CHECKPOINT_ARCH, ModelConfig

FORMAT = "tmatch-v1"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: ModelConfig,
                    meta: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write ``model``'s weights, ``config`` and ``meta`` to a safetensors file (atomically).

    Args:
        path: destination, conventionally ``*.safetensors``; parent folders are created.
        model: the network (a DDP/compiled wrapper is unwrapped via ``.module``/``._orig_mod``).
        config: the :class:`ModelConfig` that rebuilds ``model``.
        meta: JSON-serialisable extras (data, metrics, recipe).
        half: store floating-point tensors as float16 (half the size, for shipping); they are
            loaded back as float32.

    Returns:
        the path written. The sidecar ``PATH.json`` holds the same config and meta.
    """
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attr in ("module", "_orig_mod"):
        model = getattr(model, attr, model)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        tensors[k] = v.contiguous().clone()
    meta = dict(meta or {})
    try:
        meta_json = json.dumps(meta, sort_keys=True)
    except TypeError as e:
        raise TmatchError(f"checkpoint meta must be JSON-serialisable: {e}") from None
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    metadata = {"tmatch_format": FORMAT, "tmatch_config": config_json, "tmatch_meta": meta_json,
                "tmatch_matcher": config.arch,
                "tmatch_dtype": "float16" if half else "float32"}
    atomic_write(path, save(tensors, metadata=metadata))
    sidecar = {"format": FORMAT, "config": config.to_dict(), "meta": meta,
               "dtype": metadata["tmatch_dtype"], "matcher": config.arch}
    atomic_write(sidecar_path(path), (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode())
    return path


def sidecar_path(path: str | os.PathLike) -> Path:
    """``model.safetensors`` → ``model.safetensors.json``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_header(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """Config and meta of a checkpoint without loading its tensors (fast)."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or not safetensors): "
                              f"{_one_line(e)}") from None
    return _parse_metadata(path, md)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a .safetensors file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint file is empty: {path}")
    return path


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _parse_metadata(path: Path, md: dict[str, str]) -> tuple[ModelConfig, dict[str, Any]]:
    if md.get("tmatch_format") != FORMAT or "tmatch_config" not in md:
        if md.get("matcher") or md.get("kind") == "neural-presence":  # the neural presence head
            from tmatch.models.weights import wrong_matcher

            raise CheckpointError(wrong_matcher(path, "neural-seg or dual-unet", owner=md.get("matcher") or "neural"))
        raise CheckpointError(f"{path} is a safetensors file but not a tmatch checkpoint "
                              "(no tmatch config in its metadata); save it with "
                              "tmatch.models.checkpoint.save_checkpoint")
    try:
        raw = json.loads(md["tmatch_config"])
        if isinstance(raw, dict) and "tmatch_matcher" not in md:  # written before arch named the matcher
            raw = {**raw, "arch": OLD_CHECKPOINT_ARCH.get(raw.get("arch"), raw.get("arch"))}
        cfg = ModelConfig.from_dict(raw)
        meta = json.loads(md.get("tmatch_meta", "{}"))
    except (json.JSONDecodeError, TmatchError) as e:
        raise CheckpointError(f"checkpoint {path} has an unusable config: {_one_line(e)}") from None
    return cfg, meta


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Rebuild the model stored in a safetensors checkpoint (never unpickles anything).

    Args:
        path: a file written by :func:`save_checkpoint`.
        map_location: device for the weights.

    Returns:
        ``(model in eval mode, config, meta)``.

    Raises:
        CheckpointError: missing, empty or corrupt file, a safetensors file without a tmatch
            config, or weights that do not fit the configured model (one-line message).
    """
    from safetensors.torch import load_file

    path = _existing(path)
    cfg, meta = read_header(path)
    # Compare the tensors present with a model built on the meta device (no memory) before
    # allocating anything: a config is not trusted to ask for a sane model.
    _check_fits(path, cfg, _stored_shapes(path), _expected_shapes(cfg))
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated): {_one_line(e)}") from None
    from tmatch.models import build_model

    model = build_model(cfg, pretrained=False)
    own = model.state_dict()
    state = {k: tensors[k].to(own[k].dtype) for k in own}
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(f"checkpoint {path} contains NaN or infinite weights")
    model.load_state_dict(state, strict=True)
    model.to(map_location)
    model.eval()
    return model, cfg, meta


def _stored_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a safetensors file (from its header; nothing loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"cannot read checkpoint {path} (corrupt or truncated): {_one_line(e)}") from None


def _expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the state dict of the model ``cfg`` builds (on the meta device)."""
    from tmatch.models import build_model

    with torch.device("meta"):
        model = build_model(cfg, pretrained=False)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_fits(path: Path, cfg: ModelConfig, stored: dict[str, tuple[int, ...]],
                own: dict[str, tuple[int, ...]]) -> None:
    missing = [k for k in own if k not in stored]
    unexpected = [k for k in stored if k not in own]
    wrong = [k for k in own if k in stored and stored[k] != own[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {k}: {stored[k]} vs {own[k]})")
        raise CheckpointError(f"checkpoint {path} does not fit a {cfg.arch} model with its own config: "
                              + "; ".join(parts))


