"""The training recipe as one typed object: :class:`TrainConfig`, loaded from YAML presets.

A config is a YAML file (or one of the presets shipped in ``tmatch/configs/``: ``seed``,
``smoke``, ``neural``) validated into :class:`TrainConfig`; command-line options override single
fields through :func:`apply_overrides`. A YAML file may start from a preset with ``base: NAME``
and change only what differs. Configs are copied, never changed in place.

>>> cfg = load_config("smoke")
>>> cfg.model.arch, cfg.batch_size > 0
('neural', True)
>>> apply_overrides(cfg, epochs=3).epochs
3
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tmatch.errors import TmatchError
from tmatch.files import atomic_write
from tmatch.models.config import ModelConfig

SOURCE_KINDS = ("auto", "samples", "coco", "folder", "cutouts")


class SourceSpec(BaseModel):
    """One source of training pairs, for :func:`tmatch.data.open_source`.

    Attributes:
        path: a COCO folder, a photo folder, a folder of RGBA cut-outs (``kind: cutouts``), or
            ``None`` for the embedded sample set.
        kind: ``auto`` (decided from the folder), ``samples``, ``coco``, ``folder``, ``cutouts``.
        weight: relative share of the pairs drawn from this source when several are mixed.
        annotations: COCO annotation file, when it is not inside ``path``.
        images: COCO image folder, when it is not ``path``.
        backgrounds: cut-outs only: folder of background photos (default: the data module's).
        options: further keyword options of ``open_source`` (``max_side``, ``target``...).
    """

    model_config = ConfigDict(extra="forbid")

    path: Optional[str] = None
    kind: Literal["auto", "samples", "coco", "folder", "cutouts"] = "auto"
    weight: float = Field(1.0, gt=0)
    annotations: Optional[str] = None
    images: Optional[str] = None
    backgrounds: Optional[str] = None
    options: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        """A source from a command-line spec.

        ``samples`` (the embedded set), ``PATH`` (COCO or photo folder, decided from its
        content), or ``KIND:PATH`` with KIND one of ``coco``, ``folder``, ``cutouts``
        (``cutouts:OBJECTS_DIR``).

        >>> SourceSpec.parse("cutouts:/data/stamps").kind
        'cutouts'
        >>> SourceSpec.parse("samples").path is None
        True
        """
        s = str(text).strip()
        if not s or s.lower() in ("samples", "sample", "none", "default"):
            return cls(kind="samples")
        head, sep, rest = s.partition(":")
        if sep and head.lower() in SOURCE_KINDS and len(head) > 1:  # "C:\..." stays a path
            kind = head.lower()
            return cls(kind=kind, path=rest or None) if kind != "samples" else cls(kind="samples")
        return cls(path=s)

    def describe(self) -> str:
        """Short human text: ``cutouts:/data/stamps (x2)``."""
        what = "samples" if self.kind == "samples" or self.path is None else (
            f"{self.kind}:{self.path}" if self.kind != "auto" else str(self.path))
        return what + (f" (x{self.weight:g})" if self.weight != 1 else "")


class DataSection(BaseModel):
    """Which pairs the network sees.

    Attributes:
        sources: training sources, mixed by ``weight``. Empty: the COCO folders named by the
            environment / ``.env`` (TRAIN_DIR, TRAIN_ANNOTATION_DIR, VAL_DIR,
            VAL_ANNOTATION_DIR, through :class:`tmatch.data.config.DataConfig`), or else the
            embedded sample set.
        valid_sources: validation sources; ``None`` splits ``sources`` by photo with
            ``train_size`` (stable for a given ``split_seed``).
        train_size: share of each source's photos used for training when splitting.
        split_seed: seed of that split.
        protocol: how pairs are made (:data:`tmatch.data.PROTOCOLS`, composable with ``+``).
        protocol_options: settings of named protocol steps, e.g. ``{"seed": {"angle": 30,
            "flip_rate": 0.5, "rate": 0.5}}`` (fields of the classes in
            :mod:`tmatch.data.protocols`).
        valid_protocol: protocol of the validation pairs (default: ``protocol``).
        wrong_query_rate: share of negative pairs (template from another photo, empty mask).
        train_pairs: training pairs per epoch (drawn afresh each epoch).
        target: what the mask target is: ``mask`` (each pair's own mask: object pixels for
            cut-outs, the box for COCO boxes) or ``footprint`` (the template's warped rectangle
            whenever the pair knows it — what feature matchers and the box benchmarks report).
        valid_pairs: validation pairs (the same pairs every epoch).
    """

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceSpec] = Field(default_factory=list)
    valid_sources: Optional[list[SourceSpec]] = None
    train_size: float = Field(0.9, gt=0, le=1)
    split_seed: int = 0
    protocol: str = "seed"
    protocol_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    valid_protocol: Optional[str] = None
    wrong_query_rate: float = Field(0.2, ge=0, le=1)
    train_pairs: int = Field(10_000, ge=1)
    valid_pairs: int = Field(500, ge=0)
    target: Literal["mask", "footprint"] = "mask"

    @field_validator("sources", "valid_sources", mode="before")
    @classmethod
    def _strings_are_specs(cls, v):
        if v is None:
            return v
        if isinstance(v, (str, dict)):
            v = [v]
        return [SourceSpec.parse(s) if isinstance(s, str) else s for s in v]


class OptimSection(BaseModel):
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``adam``, ``adamw`` or ``sgd``.
        lr: base learning rate.
        weight_decay: L2 (adam, sgd) or decoupled (adamw) weight decay.
        momentum: sgd only.
        schedule: ``constant``; ``step`` (multiply by ``gamma`` at each epoch of
            ``milestones``); ``cosine`` (linear warm-up for ``warmup_epochs`` then cosine
            decay to ``min_lr`` at the last step). The rate changes every step.
        milestones: ``step`` only: 0-based epochs from which the rate is multiplied by gamma.
        gamma: ``step`` only.
        warmup_epochs: linear warm-up length (any schedule), may be fractional.
        min_lr: ``cosine`` only: the final rate.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
    """

    model_config = ConfigDict(extra="forbid")

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(0.1, gt=0)
    warmup_epochs: float = Field(0.0, ge=0)
    min_lr: float = Field(0.0, ge=0)
    grad_clip: Optional[float] = Field(None, gt=0)


class LossSection(BaseModel):
    """Weights of the loss terms (0 switches a term off).

    Attributes:
        dice: soft Dice on the mask probabilities.
        bce: pixel-wise binary cross-entropy on the mask logits.
        presence: binary cross-entropy of the presence logit against ``present`` (only for
            models that output one).
        dice_mode: ``batch`` pools the whole batch into one Dice (the original, smp's
            ``DiceLoss``: negatives push predictions to zero through the denominator);
            ``positives`` averages a per-pair Dice over the pairs whose template is present.
        bce_pos_weight: weight of the positive pixels in the BCE term.
    """

    model_config = ConfigDict(extra="forbid")

    dice: float = Field(1.0, ge=0)
    bce: float = Field(0.0, ge=0)
    presence: float = Field(0.0, ge=0)
    dice_mode: Literal["batch", "positives"] = "batch"
    bce_pos_weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _some_term(self):
        if self.dice + self.bce + self.presence <= 0:
            raise ValueError("at least one loss weight (dice, bce, presence) must be positive")
        return self


class TrainConfig(BaseModel):
    """Everything a training run needs; saved as ``config.yaml`` in the run folder.

    Attributes:
        name: run name (used for the default output folder ``runs/NAME``).
        model: the network, :class:`tmatch.models.config.ModelConfig`.
        data: the pairs, :class:`DataSection`.
        optim: optimiser and schedule, :class:`OptimSection`.
        loss: loss weights, :class:`LossSection`.
        epochs: number of epochs.
        batch_size: pairs per step on each process (the global batch is ``batch_size`` ×
            number of processes).
        seed: seed of model initialisation and pair drawing.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``.
        workers: DataLoader worker processes per training process (0: load in the main one).
        threads: CPU threads of each training process (``None``: torch's default; torchrun
            sets 1 per process). On a shared or busy CPU, 1 avoids OpenMP contention.
        amp: mixed precision on CUDA (ignored on CPU).
        amp_dtype: ``float16`` (with gradient scaling; V100) or ``bfloat16`` (A100/H100).
        out: output folder; ``None`` means ``runs/NAME``.
        metric_threshold: mask probability above which a pixel counts as predicted (IoU@0.5).
        monitor: the validation metric that picks the ``best`` checkpoint (higher is better).
        vis_pairs: validation pairs drawn in ``epoch_N.png`` (0: none).
        vis_every: draw the prediction grid every this many epochs (and at the last).
        log_every: TensorBoard step scalars every this many steps.
        progress: show a progress bar on the main process.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "run"
    model: ModelConfig
    data: DataSection = Field(default_factory=DataSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    loss: LossSection = Field(default_factory=LossSection)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    seed: int = 0
    device: str = "auto"
    workers: int = Field(4, ge=0)
    threads: Optional[int] = Field(None, ge=1)
    amp: bool = True
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    out: Optional[str] = None
    metric_threshold: float = Field(0.5, gt=0, lt=1)
    monitor: Literal["iou", "iou_pooled", "success"] = "iou"
    vis_pairs: int = Field(5, ge=0)
    vis_every: int = Field(1, ge=1)
    log_every: int = Field(10, ge=1)
    progress: bool = True

    @field_validator("device")
    @classmethod
    def _device_ok(cls, v: str) -> str:
        v = str(v).strip().lower()
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {v!r}")

    @property
    def out_dir(self) -> Path:
        """The run folder."""
        return Path(self.out) if self.out else Path("runs") / self.name

    def to_dict(self) -> dict:
        """Plain JSON/YAML-ready dict (the model section through ``ModelConfig.to_dict``)."""
        d = self.model_dump(mode="json")
        d["model"] = self.model.to_dict()
        return d

    def to_yaml(self) -> str:
        """The config as YAML text (what ``config.yaml`` in a run folder holds)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Validate a dict; errors become one-line :class:`TmatchError` messages."""
        return _validate(d, "config")


# -- presets and files ------------------------------------------------------------------------

def list_presets() -> list[str]:
    """Names of the presets shipped in ``tmatch/configs/`` (``neural``, ``seed``, ``smoke``)."""
    folder = resources.files("tmatch") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _preset_text(name: str) -> str:
    if name not in list_presets():
        raise TmatchError(f"unknown preset {name!r}; choose one of: {', '.join(list_presets())}, "
                          "or give a YAML file")
    return (resources.files("tmatch") / "configs" / f"{name}.yaml").read_text()


def _read_yaml(text: str, where: str) -> dict:
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        msg = str(e).replace("\n", " ")
        raise TmatchError(f"{where} is not valid YAML: {msg}") from None
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise TmatchError(f"{where} must hold a mapping of settings, got {type(d).__name__}")
    return d


def _raw_config(spec: str | os.PathLike, _seen: tuple = ()) -> dict:
    """The merged dict of a preset name or a YAML file, following ``base:`` links."""
    s = str(spec)
    path = Path(s)
    if s.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise TmatchError(f"config file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TmatchError(f"config file {path} is not a text YAML file (a YAML config or a preset "
                              f"name: tmatch train --preset neural)") from None
        except OSError as e:
            raise TmatchError(f"cannot read config file {path}: {e.strerror or e}") from None
        d = _read_yaml(text, f"config file {path}")
        where = str(path.resolve())
    else:
        d = _read_yaml(_preset_text(s), f"preset {s}")
        where = f"preset:{s}"
    if where in _seen:
        raise TmatchError(f"config {s} includes itself through 'base:'")
    base = d.pop("base", None)
    if base is not None:
        b = str(base)
        if not (b in list_presets()) and not Path(b).is_absolute() and where.startswith("/"):
            b = str(Path(where).parent / b)  # a relative file path is relative to this file
        d = merge(_raw_config(b, _seen + (where,)), d)
    return d


def merge(base: dict, changes: dict) -> dict:
    """Deep merge of two config dicts: mappings merge key by key, anything else is replaced.

    >>> merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}, 'b': 1}
    """
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _validate(d: dict, where: str) -> TrainConfig:
    try:
        return TrainConfig.model_validate(d)
    except ValidationError as e:
        errs = e.errors()
        first = errs[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise TmatchError(f"bad {where}: {loc}: {first['msg']}{more}") from None


def load_config(spec: str | os.PathLike = "neural") -> TrainConfig:
    """A config from a preset name (``seed``, ``smoke``, ``neural``) or a YAML file.

    Args:
        spec: preset name, or path of a YAML file (which may say ``base: PRESET``).

    Raises:
        TmatchError: unknown preset, missing file, bad YAML or an invalid setting (one line
            naming the setting).

    >>> load_config("seed").optim.lr
    0.0001
    """
    return _validate(_raw_config(spec), f"config {spec}")


def apply_overrides(config: TrainConfig, *, epochs: int | None = None,
                    batch_size: int | None = None, lr: float | None = None,
                    data: list[str] | None = None, out: str | os.PathLike | None = None,
                    device: str | None = None, workers: int | None = None,
                    seed: int | None = None, train_pairs: int | None = None,
                    valid_pairs: int | None = None, amp: bool | None = None,
                    progress: bool | None = None, input_size: int | None = None,
                    threads: int | None = None) -> TrainConfig:
    """A copy of ``config`` with the given fields replaced (``None`` leaves a field alone).

    ``data`` replaces the training sources by the parsed specs (:meth:`SourceSpec.parse`),
    equally weighted; mixing weights and per-source options belong in the YAML file.
    """
    d = config.to_dict()
    top = {"epochs": epochs, "batch_size": batch_size, "device": device, "workers": workers,
           "seed": seed, "amp": amp, "progress": progress, "threads": threads}
    d.update({k: v for k, v in top.items() if v is not None})
    if out is not None:
        d["out"] = str(out)
    if lr is not None:
        d["optim"]["lr"] = float(lr)
    if input_size is not None:
        d["model"]["input_size"] = int(input_size)
    if train_pairs is not None:
        d["data"]["train_pairs"] = int(train_pairs)
    if valid_pairs is not None:
        d["data"]["valid_pairs"] = int(valid_pairs)
    if data:
        d["data"]["sources"] = [SourceSpec.parse(s).model_dump() for s in data]
    return _validate(d, "override")


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write ``config`` as YAML atomically (temp file + rename)."""
    return atomic_write(path, config.to_yaml())
