"""The original network, faithfully: a U-Net whose encoder is duplicated for the image and the query.

Both encoders see an ``S×S`` picture: the search image, and the template pasted in the centre of
a black canvas the size of the search image (both resized to ``S×S``). At every encoder level the
two feature maps are combined — multiplied (the original's default), added, or concatenated and
brought back to the level's width by a 3×3 convolution — and the fused pyramid is decoded by the
segmentation_models_pytorch U-Net decoder into mask logits. There is no presence head: the
original reported "absent" only through an empty mask.

The query encoding does not depend on the search image's content, so a video encodes it once
(:meth:`DualUNet.encode_query`) and reuses it for every frame (:meth:`DualUNet.decode`).

>>> import torch
>>> from tmatch.models.config import ModelConfig
>>> net = DualUNet(ModelConfig(arch="dual-unet", encoder="resnet34", input_size=64)).eval()
>>> net(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64))["mask"].shape
torch.Size([2, 1, 64, 64])
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tmatch.models.backbones import build_encoder
from tmatch.models.config import ModelConfig


class Fusion(nn.Module):
    """Combine image and query features of one level ``(B, C, h, w)`` → ``(B, C, h, w)``.

    ``mul`` and ``add`` broadcast a query batch of 1 over the image batch.
    """

    def __init__(self, mode: str, channels: int):
        super().__init__()
        if mode not in ("mul", "add", "concat"):
            raise ValueError(f"fusion must be mul, add or concat, got {mode!r}")
        self.mode = mode
        self.conv = nn.Conv2d(2 * channels, channels, 3, padding=1) if mode == "concat" else None

    def forward(self, f_image: torch.Tensor, f_query: torch.Tensor) -> torch.Tensor:
        if self.mode == "mul":
            return f_image * f_query
        if self.mode == "add":
            return f_image + f_query
        if f_query.shape[0] != f_image.shape[0]:
            f_query = f_query.expand(f_image.shape[0], -1, -1, -1)
        return self.conv(torch.cat([f_image, f_query], dim=1))


class DualUNet(nn.Module):
    """Image encoder + query encoder (same architecture, separate weights) → fusion per level →
    U-Net decoder → one-channel mask logits.

    Args:
        config: ``arch="dual-unet"``; ``encoder``, ``fusion``, ``input_size``,
            ``decoder_channels`` and ``pretrained`` are used.
        pretrained: overrides ``config.pretrained`` (``False`` when weights come from a checkpoint).
    """

    def __init__(self, config: ModelConfig, pretrained: bool | None = None):
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        self.config = config
        use_pre = config.pretrained if pretrained is None else bool(pretrained)
        self.image_encoder = build_encoder(config.encoder, pretrained=use_pre, depth=5)
        self.query_encoder = copy.deepcopy(self.image_encoder)
        channels = list(self.image_encoder.out_channels)
        # Level 0 is the input itself, which the U-Net decoder drops: nothing to fuse there.
        self.fusions = nn.ModuleList(Fusion(config.fusion, c) for c in channels[1:])
        self.decoder = UnetDecoder(encoder_channels=channels,
                                   decoder_channels=list(config.decoder_channels), n_blocks=5)
        self.segmentation_head = SegmentationHead(config.decoder_channels[-1], 1, kernel_size=3)

    def _check(self, x: torch.Tensor, what: str) -> None:
        s = self.config.input_size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"{what} must be (B, 3, {s}, {s}) for this model (input_size={s}), "
                             f"got {tuple(x.shape)}")

    def encode_query(self, query: torch.Tensor) -> list[torch.Tensor]:
        """Query canvas ``(Bq, 3, S, S)`` → five feature maps ``(Bq, C_i, S / 2^i, S / 2^i)``, i = 1..5."""
        self._check(query, "query")
        return list(self.query_encoder(query)[1:])

    def decode(self, image: torch.Tensor, query_features: list[torch.Tensor]) -> torch.Tensor:
        """Search image ``(B, 3, S, S)`` + query features (batch B, or 1 shared by all) →
        mask logits ``(B, 1, S, S)``."""
        self._check(image, "image")
        feats = self.image_encoder(image)
        fused = [feats[0]] + [f(a, q) for f, a, q in zip(self.fusions, feats[1:], query_features)]
        return self.segmentation_head(self.decoder(fused))

    def forward(self, image: torch.Tensor, query: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """``image`` ``(B, 3, S, S)``, ``query`` ``(B, 3, S, S)`` (normalised) →
        ``{"mask": (B, 1, S, S) logits, "presence": None}``."""
        return {"mask": self.decode(image, self.encode_query(query)), "presence": None}
