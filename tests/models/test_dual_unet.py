"""The original network: duplicated encoders, per-level fusion, U-Net decoder."""

from __future__ import annotations

import pytest
import torch

from tmatch.models import ModelConfig, build_model
from tmatch.models.dual_unet import DualUNet


@pytest.mark.parametrize("fusion", ["mul", "add", "concat"])
def test_forward_gives_mask_logits_and_no_presence(fusion):
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="dual-unet", fusion=fusion, input_size=64, pretrained=False)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    assert out["mask"].shape == (2, 1, 64, 64) and out["presence"] is None
    assert (net.fusions[0].conv is not None) == (fusion == "concat")


def test_encoders_are_separate_copies_starting_from_the_same_imagenet_weights():
    net = DualUNet(ModelConfig(arch="dual-unet", input_size=64))
    a, b = net.image_encoder.conv_stem.weight, net.query_encoder.conv_stem.weight
    assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_cached_query_encoding_equals_forward():
    """Video: encode the query once, decode every frame with it."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="dual-unet", encoder="resnet34", input_size=64)).eval()
    img, q = torch.randn(3, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        enc = net.encode_query(q)
        cached = net.decode(img, enc)
        direct = net(img, q.expand(3, -1, -1, -1))["mask"]
    assert torch.allclose(cached, direct, atol=1e-5)


def test_wrong_input_size_is_a_clear_error():
    net = build_model(ModelConfig(arch="dual-unet", input_size=64, pretrained=False))
    with pytest.raises(ValueError, match="input_size=64"):
        net(torch.zeros(1, 3, 96, 96), torch.zeros(1, 3, 96, 96))
