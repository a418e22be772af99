"""Our network: depthwise correlation, its shapes, and why a shared backbone can localise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tmatch.models import ModelConfig, build_model
from tmatch.models.backbones import EfficientNetLite0Encoder
from tmatch.models.neural_seg import (
    QUERY_PAD,
    SiameseCorrelationNet,
    kernels_as_weight,
    xcorr_paired,
    xcorr_shared,
)
from tmatch.models.inputs import prepare_inputs

SMALL = ModelConfig(arch="neural-seg", input_size=96, template_size=48, pretrained=False)


def test_paired_and_shared_correlation_agree():
    g = torch.Generator().manual_seed(0)
    search = torch.randn(2, 5, 12, 10, generator=g)
    kernels = torch.randn(3, 5, 4, 4, generator=g)
    shared = xcorr_shared(search, kernels_as_weight(kernels))  # (B, K, C, h, w)
    assert shared.shape == (2, 3, 5, 12, 10)
    for k in range(3):
        paired = xcorr_paired(search, kernels[k:k + 1].expand(2, -1, -1, -1))
        assert torch.allclose(shared[:, k], paired, atol=1e-5)


@pytest.mark.parametrize("kh, kw", [(3, 3), (4, 4), (2, 5), (5, 2), (1, 4)])
@pytest.mark.parametrize("i, j", [(0, 0), (1, 0), (0, 1)])
def test_correlation_is_cross_correlation_with_top_left_extra_padding(kh, kw, i, j):
    """out[y, x] = sum search[y + a - kh // 2, x + b - kw // 2] * kernel[a, b]: odd kernels are
    padded evenly, even ones get the extra row/column at the top/left; the output keeps the size."""
    search = torch.zeros(1, 1, 9, 9)
    search[0, 0, 4, 6] = 1.0
    kernel = torch.zeros(1, 1, kh, kw)
    a, b = min(i, kh - 1), min(j, kw - 1)
    kernel[0, 0, a, b] = 1.0
    out = xcorr_paired(search, kernel)
    assert out.shape == search.shape
    peak = tuple(int(v) for v in np.unravel_index(int(out.argmax()), out.shape[2:]))
    assert peak == (4 - a + kh // 2, 6 - b + kw // 2)
    assert float(out.sum()) == 1.0  # the impulse is inside the padded window: nothing cut off


@pytest.mark.parametrize("name, box", [("astronaut", (150, 100, 150, 120)), ("coffee", (200, 150, 120, 100)),
                                       ("rocket", (300, 100, 60, 120))])
def test_feature_shared_pretrained_features_correlate_best_at_the_crop(name, box, request):
    """Without any training, correlating ImageNet features of a crop (masked, averaged kernel)
    with the photo's features peaks where the crop was taken: the design starts from a
    working localiser, training only has to refine it."""
    img = request.getfixturevalue(name)
    x, y, w, h = box
    cfg = ModelConfig(arch="neural-seg")
    inp = prepare_inputs(cfg, img[y:y + h, x:x + w], img)
    enc = EfficientNetLite0Encoder(pretrained=True, depth=3).eval()
    q = inp.query[None]
    valid = (q[:, :1] > QUERY_PAD / 2).float()
    with torch.no_grad():
        fq = F.normalize(enc(q * valid)[3], dim=1)
        fs = F.normalize(enc(inp.image[None])[3], dim=1)
    m = F.avg_pool2d(valid, 8)
    resp = xcorr_shared(fs, kernels_as_weight(fq * m / m.sum()))[0, 0].sum(0)
    iy, ix = np.unravel_index(int(resp.argmax()), resp.shape)
    cx, cy = (x + w / 2) * inp.scale[0] / 8, (y + h / 2) * inp.scale[1] / 8
    assert abs(ix - cx) <= 1.0 and abs(iy - cy) <= 1.0


def test_forward_shapes_and_inference_path_agree_with_training_path(astronaut):
    torch.manual_seed(0)
    net = SiameseCorrelationNet(SMALL).eval()
    img = torch.randn(2, 3, 96, 96)
    q = torch.randn(2, 3, 48, 48)
    q[:, :, :8] = QUERY_PAD
    with torch.no_grad():
        out = net(img, q)
        assert out["mask"].shape == (2, 1, 96, 96) and out["presence"].shape == (2,)
        k8, k16 = net.encode_query(q)
        assert k8.shape == (2, 64, 6, 6) and k16.shape == (2, 128, 3, 3)
        # image 0 against both variants: the chosen one is the most present, and with the
        # paired query it reproduces the paired forward
        many = net.match_encoded(img[:1], k8, k16)
        best = int(many["variant"][0])
        assert best == int(many["presences"][0].argmax())
        single = net.match_encoded(img[:1], k8[:1], k16[:1])
        assert torch.allclose(single["mask"], out["mask"][:1], atol=1e-4)
        assert torch.allclose(single["presence"], out["presence"][:1], atol=1e-4)


def test_padding_outside_the_template_does_not_change_kernels():
    """Pixels marked QUERY_PAD are excluded: the kernel depends only on the template pixels."""
    torch.manual_seed(0)
    net = SiameseCorrelationNet(SMALL).eval()
    q = torch.full((1, 3, 48, 48), QUERY_PAD)
    q[:, :, 16:32, 16:32] = torch.randn(1, 3, 16, 16)
    inside = torch.zeros(1, 3, 48, 48, dtype=torch.bool)
    inside[:, :, 16:32, 16:32] = True
    # other padding: any value below the pad limit, varying from pixel to pixel
    other = torch.where(inside, q, QUERY_PAD * (1.0 + 5.0 * torch.rand(1, 3, 48, 48)))
    assert not torch.equal(q, other)
    with torch.no_grad():
        k8a, k16a = net.encode_query(q)
        k8b, k16b = net.encode_query(other)
        k8c, _ = net.encode_query(torch.where(inside, q + 0.5, q))  # the template itself changed
    assert torch.equal(k8a, k8b) and torch.equal(k16a, k16b)
    assert not torch.allclose(k8a, k8c)
    # the kernel's cells that lie fully outside the template are exactly zero
    assert float(k8a[0, :, 0, 0].abs().max()) == 0.0 and float(k8a[0, :, 2:4, 2:4].abs().max()) > 0


def test_wrong_input_size_says_what_would_work():
    net = build_model(SMALL).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, 96, 96\)"):
        net(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="template_size=48"):
        net(torch.zeros(1, 3, 96, 96), torch.zeros(1, 3, 32, 32))
