"""Torch networks and learned heads, each file named after what it holds: ``dual_unet.py`` and
``neural_seg.py`` (the networks of the matchers of those names), ``features.py`` (the ImageNet
features the ``neural`` matcher correlates), ``presence.py`` (its presence head).

>>> from tmatch.models import ModelConfig, build_model
>>> cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
>>> net = build_model(cfg)
>>> type(net).__name__
'SiameseCorrelationNet'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from tmatch.models.config import ModelConfig


def __getattr__(name: str) -> Any:
    # ModelConfig is imported on first use: `tmatch.models.weights` (read by every matcher) must
    # not pull pydantic into the start-up of `tmatch match`.
    if name == "ModelConfig":
        from tmatch.models.config import ModelConfig

        return ModelConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(config: ModelConfig, pretrained: bool | None = None) -> torch.nn.Module:
    """Build the network described by ``config`` (in training mode, as torch builds modules).

    Args:
        config: the model description.
        pretrained: load the offline ImageNet backbone weights; ``None`` follows
            ``config.pretrained``. Checkpoint loading passes ``False`` (its weights replace them).

    Returns:
        a module whose ``forward(image, query)`` returns ``{"mask": (B, 1, S, S) logits,
        "presence": (B,) logits or None}``.
    """
    from tmatch.models.config import ModelConfig

    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model needs a ModelConfig, got {type(config).__name__}")
    if config.arch == "neural":
        raise TypeError("arch 'neural' (the neural matcher) has no trainable network: its presence "
                        "head is trained by tmatch.train.neural")
    if config.arch == "dual-unet":
        from tmatch.models.dual_unet import DualUNet

        return DualUNet(config, pretrained=pretrained)
    from tmatch.models.neural_seg import SiameseCorrelationNet

    return SiameseCorrelationNet(config, pretrained=pretrained)


__all__ = ["ModelConfig", "build_model"]
