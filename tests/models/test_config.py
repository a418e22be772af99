from __future__ import annotations

import pytest

from tmatch.errors import InputError
from tmatch.models.config import ModelConfig


def test_round_trip_through_dict_keeps_every_field():
    cfg = ModelConfig(arch="dual-unet", encoder="resnet34", fusion="concat", input_size=512,
                      mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    d = cfg.to_dict()
    assert d["mean"] == [0.485, 0.456, 0.406]
    assert ModelConfig.from_dict(d) == cfg


def test_defaults_match_the_contract():
    cfg = ModelConfig(arch="neural-seg")
    assert (cfg.encoder, cfg.fusion, cfg.input_size, cfg.template_size, cfg.pretrained) == \
        ("efficientnet-lite0", "mul", 320, 128, True)
    assert cfg.mean == cfg.std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("bad, word", [
    ({"arch": "unet"}, "arch"),
    ({"arch": "neural-seg", "input_size": 300}, "input_size"),
    ({"arch": "neural-seg", "encoder": "resnet34"}, "efficientnet-lite0"),
    ({"arch": "neural-seg", "template_size": 40}, "template_size"),
    ({"arch": "dual-unet", "fusion": "max"}, "fusion"),
    ({"arch": "neural-seg", "typo_field": 1}, "typo_field"),
])
def test_invalid_config_raises_one_line_input_error(bad, word):
    with pytest.raises(InputError) as e:
        ModelConfig.from_dict(bad)
    assert word in str(e.value) and "\n" not in str(e.value)


def test_replace_returns_validated_copy():
    cfg = ModelConfig(arch="neural-seg")
    small = cfg.replace(input_size=96, template_size=48)
    assert small.input_size == 96 and cfg.input_size == 320
    with pytest.raises(InputError):
        cfg.replace(input_size=100)


@pytest.mark.parametrize("field, value", [("width", 200000), ("input_size", 4096), ("template_size", 1040),
                                          ("decoder_channels", [256, 128, 64, 32, 100000]),
                                          ("std", [0.5, float("inf"), 0.5]), ("mean", [float("nan"), 0.5, 0.5])])
def test_configs_are_bounded(field, value):
    """A config read from a weights file cannot ask for an absurd network."""
    from tmatch.errors import InputError

    with pytest.raises(InputError, match=field):
        ModelConfig.from_dict({"arch": "neural-seg", "input_size": 2048, field: value})
