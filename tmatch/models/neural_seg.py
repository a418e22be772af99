"""Our network: a Siamese matcher that correlates template features with search features.

Why (details in ``docs/neural.md``): the original dual-U-Net multiplies the features of a
*centred* query with the image position by position, so a template that sits elsewhere has
nothing to line up with; it has no notion of scale, rotation or absence. Here

1. one **shared** EfficientNet-Lite0 backbone (ImageNet weights) encodes the template canvas
   ``(T×T)`` and the search image ``(S×S)`` up to stride 16 — same weights, so the same pattern
   gives the same features wherever it is;
2. the template's features, masked to the template's own pixels and averaged, become
   **depthwise cross-correlation kernels** at strides 8 and 16 (SiamRPN++/SiamMask): sliding
   them over the search features gives, at every position and channel, how well the template
   matches there — translation is handled by construction;
3. a light decoder fuses the stride-16 and stride-8 responses and climbs back to full
   resolution with skip connections from the search image's stride-4 and stride-2 features
   (sharp edges), giving mask logits ``(B, 1, S, S)``;
4. a **presence** head reads the pooled responses and says whether the template is there at all;
5. scale and rotation: training warps the template (scale, rotation, perspective); at inference
   the template canvas is rendered at several scales and angles, all variants are correlated in
   one batch, and each search image keeps the variant with the highest presence (max-pooling
   over variants), so only one decoder pass is paid per image.

The template canvas marks pixels outside the template with :data:`QUERY_PAD` (a value no real
normalised pixel takes); the network turns it into a validity mask, so kernels only contain the
template, whatever its size or rotation inside the canvas.

>>> import torch
>>> from tmatch.models.config import ModelConfig
>>> cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
>>> net = SiameseCorrelationNet(cfg).eval()
>>> out = net(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 32, 32))
>>> out["mask"].shape, out["presence"].shape
(torch.Size([2, 1, 64, 64]), torch.Size([2]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tmatch.models.backbones import LITE0_CHANNELS, EfficientNetLite0Encoder
from tmatch.models.config import ModelConfig

#: value of template-canvas pixels that are not part of the template (normalised units).
QUERY_PAD = -100.0
_PAD_LIMIT = QUERY_PAD / 2
#: initial mask logit: sigmoid(-3) ≈ 5% foreground.
_PRIOR_LOGIT = -3.0


def _cbr(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SepBlock(nn.Sequential):
    """1×1 convolution (mix channels) then 3×3 depthwise (spatial context), each BN + ReLU:
    about a tenth of a full 3×3 convolution's cost."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def _same_pad(x: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    # Output keeps the input's size; for even kernels the extra pixel goes top/left.
    return F.pad(x, (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2))


def xcorr_paired(search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise cross-correlation of each search map with its own kernel.

    Args:
        search: ``(B, C, h, w)``.
        kernel: ``(B, C, kh, kw)``.

    Returns:
        ``(B, C, h, w)``: channel ``c`` of image ``b`` correlated with kernel ``(b, c)``
        ("same" size, zero padding).
    """
    b, c, h, w = search.shape
    kh, kw = kernel.shape[-2:]
    x = _same_pad(search, kh, kw).reshape(1, b * c, h + kh - 1, w + kw - 1)
    out = F.conv2d(x, kernel.reshape(b * c, 1, kh, kw), groups=b * c)
    return out.reshape(b, c, h, w)


def kernels_as_weight(kernels: torch.Tensor) -> torch.Tensor:
    """``K`` depthwise kernels ``(K, C, kh, kw)`` → grouped-convolution weight ``(C·K, 1, kh, kw)``
    (group ``c`` holds its ``K`` kernels), the layout :func:`xcorr_shared` slides."""
    k, c, kh, kw = kernels.shape
    return kernels.transpose(0, 1).reshape(c * k, 1, kh, kw)


def xcorr_shared(search: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Depthwise cross-correlation of every search map with every one of ``K`` kernels.

    The convolution has ``groups = C`` (a constant), so batch ``B`` and variants ``K`` stay
    dynamic in an exported ONNX graph.

    Args:
        search: ``(B, C, h, w)``.
        weight: ``(C·K, 1, kh, kw)`` from :func:`kernels_as_weight`.

    Returns:
        ``(B, K, C, h, w)``.
    """
    b, c, h, w = search.shape
    kh, kw = weight.shape[-2:]
    out = F.conv2d(_same_pad(search, kh, kw), weight, groups=c)  # (B, C*K, h, w)
    return out.reshape(b, c, -1, h, w).transpose(1, 2)


class SiameseCorrelationNet(nn.Module):
    """Shared backbone → masked depthwise correlation at strides 8 and 16 → light decoder with
    skips → mask logits, plus a presence logit.

    ``forward(image, query)`` pairs image ``i`` with query ``i`` (training);
    :meth:`encode_query` + :meth:`match_encoded` match every image against ``K`` template
    variants and keep the best per image (inference, video, ONNX).

    Args:
        config: ``arch="neural-seg"``; ``input_size``, ``template_size``, ``width`` and
            ``pretrained`` are used.
        pretrained: overrides ``config.pretrained`` (``False`` when weights come from a checkpoint).
    """

    def __init__(self, config: ModelConfig, pretrained: bool | None = None):
        super().__init__()
        self.config = config
        use_pre = config.pretrained if pretrained is None else bool(pretrained)
        w = config.width
        c2, c4, c8, c16 = LITE0_CHANNELS[1:5]
        # Shared backbone, strides 2..16 (nothing at stride 32 is computed).
        self.backbone = EfficientNetLite0Encoder(pretrained=use_pre, depth=4)
        # Adjust layers, separate for the template (kernel) and the search side (as SiamRPN++).
        self.kernel8, self.search8 = _cbr(c8, w), _cbr(c8, w)
        self.kernel16, self.search16 = _cbr(c16, 2 * w), _cbr(c16, 2 * w)
        # After correlation.
        self.post8 = SepBlock(w, w)
        self.post16 = SepBlock(2 * w, w)
        self.heat8 = nn.Conv2d(w, 1, 1)
        self.heat16 = nn.Conv2d(w, 1, 1)
        self.presence_head = nn.Sequential(nn.Linear(2 * w + 1, 32), nn.ReLU(inplace=True),
                                           nn.Linear(32, 1))
        # Decoder: stride 8 → 4 → 2 → full resolution.
        self.fuse8 = SepBlock(2 * w + 1, w)
        self.skip4 = _cbr(c4, w // 2)
        self.up4 = SepBlock(w + w // 2, w // 2)
        self.skip2 = _cbr(c2, w // 4)
        self.up2 = SepBlock(w // 2 + w // 4, w // 4)
        self.head = nn.Conv2d(w // 4, 1, 3, padding=1)
        # The mask logits are the decoder's refinement plus the upsampled heat map, so the mask
        # loss reaches the correlation directly (a short gradient path), and start from a prior
        # of about 5% foreground instead of 50% (RetinaNet's trick): training does not first
        # have to spend its steps pushing the whole background down.
        nn.init.constant_(self.heat8.bias, _PRIOR_LOGIT)
        nn.init.zeros_(self.heat16.bias)
        nn.init.zeros_(self.head.bias)

    # ------------------------------------------------------------------ checks
    def _check(self, x: torch.Tensor, size: int, what: str, key: str) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != size or x.shape[3] != size:
            raise ValueError(f"{what} must be (B, 3, {size}, {size}) for this model ({key}={size}), "
                             f"got {tuple(x.shape)}")

    # ---------------------------------------------------------------- template
    def encode_query(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Template canvases ``(K, 3, T, T)`` → correlation kernels ``(K, W, T/8, T/8)`` and
        ``(K, 2W, T/16, T/16)`` (W = ``config.width``), masked to the template's pixels and
        normalised so that a correlation is an average over the template."""
        self._check(query, self.config.template_size, "query", "template_size")
        valid = (query[:, :1] > _PAD_LIMIT).to(query.dtype)  # (K, 1, T, T)
        feats = self.backbone(query * valid)
        out = []
        for f, adjust, stride in ((feats[3], self.kernel8, 8), (feats[4], self.kernel16, 16)):
            m = F.avg_pool2d(valid, stride)  # fraction of each cell inside the template
            k = adjust(f) * m
            out.append(k / (m.sum(dim=(2, 3), keepdim=True) + 1e-3))
        return out[0], out[1]

    # ------------------------------------------------------------------ search
    def _search_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        self._check(image, self.config.input_size, "image", "input_size")
        f = self.backbone(image)
        return [f[1], f[2], self.search8(f[3]), self.search16(f[4])]

    def _responses(self, c8: torch.Tensor, c16: torch.Tensor):
        """Correlations ``(N, W, S/8, S/8)``, ``(N, 2W, S/16, S/16)`` → post-processed maps, heat and
        presence logit ``(N,)``."""
        p8 = self.post8(c8)
        p16 = self.post16(c16)
        heat = self.heat8(p8) + F.interpolate(self.heat16(p16), size=p8.shape[-2:], mode="bilinear",
                                              align_corners=False)
        pooled = torch.cat([F.adaptive_max_pool2d(p8, 1).flatten(1), F.adaptive_max_pool2d(p16, 1).flatten(1),
                            heat.flatten(1).max(dim=1, keepdim=True).values], dim=1)
        return p8, p16, heat, self.presence_head(pooled).squeeze(1)

    def _decode(self, f2: torch.Tensor, f4: torch.Tensor, p8: torch.Tensor, p16: torch.Tensor,
                heat: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.interpolate(p16, size=p8.shape[-2:], mode="bilinear", align_corners=False), p8, heat], 1)
        x = self.fuse8(x)
        x = F.interpolate(x, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        x = self.up4(torch.cat([x, self.skip4(f4)], 1))
        x = F.interpolate(x, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        x = self.up2(torch.cat([x, self.skip2(f2)], 1))
        x = self.head(x)
        s = self.config.input_size
        return F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False) + \
            F.interpolate(heat, size=(s, s), mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor, query: torch.Tensor) -> dict[str, torch.Tensor]:
        """Paired matching (training).

        Args:
            image: ``(B, 3, S, S)`` normalised search images.
            query: ``(B, 3, T, T)`` template canvases (see :mod:`tmatch.models.inputs`).

        Returns:
            ``{"mask": (B, 1, S, S) logits, "presence": (B,) logits, "heat": (B, 1, S/8, S/8)}``.
        """
        if query.shape[0] != image.shape[0]:
            raise ValueError(f"image and query batches differ: {image.shape[0]} vs {query.shape[0]}")
        k8, k16 = self.encode_query(query)
        f2, f4, s8, s16 = self._search_features(image)
        p8, p16, heat, presence = self._responses(xcorr_paired(s8, k8), xcorr_paired(s16, k16))
        return {"mask": self._decode(f2, f4, p8, p16, heat), "presence": presence, "heat": heat}

    def match_encoded(self, image: torch.Tensor, kernel8: torch.Tensor, kernel16: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
        """Match every image against ``K`` template variants; keep the best variant per image.

        Args:
            image: ``(B, 3, S, S)`` normalised search images.
            kernel8: ``(K, W, T/8, T/8)`` and ``kernel16``: ``(K, 2W, T/16, T/16)`` from
                :meth:`encode_query`.

        Returns:
            ``{"mask": (B, 1, S, S) logits, "presence": (B,) logits, "variant": (B,) int64 index of
            the chosen variant, "presences": (B, K) logits of every variant}``.
        """
        return self.match_weights(image, kernels_as_weight(kernel8), kernels_as_weight(kernel16))

    def match_weights(self, image: torch.Tensor, weight8: torch.Tensor, weight16: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
        """:meth:`match_encoded` with kernels already in grouped-convolution layout
        ``(W·K, 1, T/8, T/8)`` and ``(2W·K, 1, T/16, T/16)`` (what the exported ONNX graphs pass)."""
        f2, f4, s8, s16 = self._search_features(image)
        b = s8.shape[0]
        c8 = xcorr_shared(s8, weight8)  # (B, K, W, h, w)
        k = c8.shape[1]
        c16 = xcorr_shared(s16, weight16)
        p8, p16, heat, presence = self._responses(c8.flatten(0, 1), c16.flatten(0, 1))
        presences = presence.reshape(b, k)
        best = presences.argmax(dim=1)  # (B,)
        onehot = (torch.arange(k, device=image.device)[None, :] == best[:, None]).to(p8.dtype)

        def pick(t: torch.Tensor) -> torch.Tensor:  # (B*K, C, h, w) -> (B, C, h, w)
            t = t.reshape(b, k, t.shape[1], t.shape[2], t.shape[3])
            return (t * onehot[:, :, None, None, None]).sum(dim=1)

        mask = self._decode(f2, f4, pick(p8), pick(p16), pick(heat))
        return {"mask": mask, "presence": (presences * onehot).sum(dim=1), "variant": best,
                "presences": presences}
