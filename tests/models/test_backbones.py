"""The offline ImageNet weights load into timm's efficientnet_lite0 and classify real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tmatch.models.backbones import (
    LITE0_CHANNELS,
    EfficientNetLite0Encoder,
    build_encoder,
    efficientnet_lite0,
    lite0_weights_path,
)


def _classify(model, rgb: np.ndarray) -> torch.Tensor:
    x = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - 0.5) / 0.5  # mean = std = 0.5
    with torch.no_grad():
        return model(torch.from_numpy(x).permute(2, 0, 1)[None]).softmax(1)[0]


@pytest.fixture(scope="module")
def classifier():
    return efficientnet_lite0(pretrained=True).eval()


def test_weights_file_ships_in_the_wheel():
    p = lite0_weights_path()
    assert p.is_file() and p.stat().st_size > 10_000_000


def test_feature_pretrained_backbone_sees_a_cat_in_chelsea(classifier, chelsea):
    p = _classify(classifier, chelsea)
    top = int(p.argmax())
    assert 281 <= top <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert float(p[281:286].sum()) > 0.8


def test_feature_pretrained_backbone_sees_espresso_in_coffee(classifier, coffee):
    assert int(_classify(classifier, coffee).argmax()) == 967  # espresso


def test_random_init_does_not_classify(chelsea):
    torch.manual_seed(0)
    p = _classify(efficientnet_lite0(pretrained=False).eval(), chelsea)
    assert float(p[281:286].sum()) < 0.5


def test_encoder_stages_strides_and_channels():
    enc = EfficientNetLite0Encoder(pretrained=False).eval()
    feats = enc(torch.zeros(1, 3, 96, 128))
    assert [f.shape[1] for f in feats] == list(LITE0_CHANNELS)
    assert [tuple(f.shape[2:]) for f in feats] == [(96 // 2 ** i, 128 // 2 ** i) for i in range(6)]
    short = EfficientNetLite0Encoder(pretrained=False, depth=4)
    assert short.out_channels == LITE0_CHANNELS[:5] and len(short(torch.zeros(1, 3, 64, 64))) == 5


def test_encoder_keeps_imagenet_weights(classifier):
    enc = EfficientNetLite0Encoder(pretrained=True)
    assert torch.equal(enc.conv_stem.weight, classifier.conv_stem.weight)
    assert torch.equal(enc.blocks[4][0].conv_pw.weight, classifier.blocks[4][0].conv_pw.weight)


def test_smp_encoders_build_offline_with_random_init():
    enc = build_encoder("resnet34", pretrained=True)  # no weights offline: random init, no download
    assert list(enc.out_channels) == [3, 64, 64, 128, 256, 512]
