"""Inputs: the one mapping between RGB arrays and network tensors, and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.models.config import ModelConfig
from tmatch.models.inputs import (
    QUERY_PAD,
    denormalize,
    mask_to_image,
    prepare_inputs,
    prepare_target,
    template_canvas,
)

NEURAL = ModelConfig(arch="neural-seg", pretrained=False)
DUAL = ModelConfig(arch="dual-unet", input_size=256, pretrained=False)


def _valid(query: torch.Tensor) -> np.ndarray:
    return (query[0] > QUERY_PAD / 2).numpy()


def test_neural_template_has_the_same_network_scale_as_the_image(astronaut):
    tpl = astronaut[100:220, 150:300]  # 150 x 120 in a 512 x 512 image
    x = prepare_inputs(NEURAL, tpl, astronaut)
    assert tuple(x.image.shape) == (3, 320, 320) and tuple(x.query.shape) == (3, 128, 128)
    assert x.scale == (0.625, 0.625) and x.content_hw == (320, 320)
    v = _valid(x.query)
    rows, cols = np.nonzero(v)
    assert cols.max() - cols.min() + 1 == round(150 * 0.625)
    assert rows.max() - rows.min() + 1 == round(120 * 0.625)
    assert abs((cols.min() + cols.max() + 1) / 2 - 64) <= 1 and abs((rows.min() + rows.max() + 1) / 2 - 64) <= 1


def test_neural_big_template_shrinks_the_image_to_keep_one_scale(coffee):
    tpl = coffee[50:300, 100:400]  # 300 wide: r = 128 / 300 < 320 / 600
    x = prepare_inputs(NEURAL, tpl, coffee)
    r = 128 / 300
    assert x.template_scale == pytest.approx(r)
    assert x.content_hw == (round(400 * r), round(600 * r))
    # outside the image content the input is 0 (the normalised mean colour)
    assert float(x.image[:, x.content_hw[0]:, :].abs().max()) == 0.0


def test_template_canvas_rotation_and_padding(coffee):
    tpl = coffee[100:140, 100:180]  # 80 wide, 40 tall
    q = template_canvas(NEURAL, tpl, 1.0, 90.0)
    rows, cols = np.nonzero(_valid(q))
    assert abs((cols.max() - cols.min() + 1) - 40) <= 2 and abs((rows.max() - rows.min() + 1) - 80) <= 2
    assert float(q[:, 0, 0].max()) == QUERY_PAD
    real = q[:, _valid(q)]
    assert float(real.min()) >= -1.0 and float(real.max()) <= 1.0


def test_denormalize_inverts_the_normalisation(chelsea):
    x = prepare_inputs(NEURAL, chelsea[:64, :64], chelsea)
    back = denormalize(NEURAL, x.image)[: x.content_hw[0], : x.content_hw[1]]
    import cv2
    small = cv2.resize(chelsea, (x.content_hw[1], x.content_hw[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - small.astype(int)).max() <= 1


@pytest.mark.parametrize("cfg", [NEURAL, DUAL], ids=["neural", "dual-unet"])
def test_target_and_mask_round_trip_through_the_network_frame(cfg, rocket):
    poly = geometry.rect_polygon(180, 90, 200, 150)
    mask = geometry.mask_from_polygon(poly, rocket.shape[:2])
    x = prepare_inputs(cfg, rocket[90:240, 180:380], rocket)
    t = prepare_target(cfg, mask, x)
    assert tuple(t.shape) == (1, cfg.input_size, cfg.input_size) and set(np.unique(t.numpy())) <= {0.0, 1.0}
    back = mask_to_image(cfg, t[0].numpy(), x) >= 0.5
    assert back.shape == rocket.shape[:2]
    assert geometry.iou(back, mask) > 0.95


def test_dual_unet_query_is_the_template_centred_on_black(astronaut):
    tpl = astronaut[0:100, 0:200]
    x = prepare_inputs(DUAL, tpl, astronaut)
    assert tuple(x.query.shape) == (3, 256, 256)
    nonblack = (x.query > -0.99).any(0).numpy()
    rows, cols = np.nonzero(nonblack)
    # centred 200 x 100 in 512 x 512 -> 100 x 50 in 256 x 256, centre 128
    assert abs((cols.min() + cols.max() + 1) / 2 - 128) <= 2 and abs((rows.min() + rows.max() + 1) / 2 - 128) <= 2
    assert abs(cols.max() - cols.min() + 1 - 100) <= 2


def test_bad_inputs_raise_input_error(astronaut):
    x = prepare_inputs(NEURAL, astronaut[:50, :50], astronaut)
    with pytest.raises(InputError):
        prepare_target(NEURAL, np.zeros((10, 10), bool), x)
    with pytest.raises(InputError):
        prepare_inputs(NEURAL, astronaut[:50, :50].astype(np.float32), astronaut)
    with pytest.raises(InputError):
        mask_to_image(NEURAL, np.zeros((64, 64)), x)
