"""Configs: presets, YAML files with `base:`, overrides, one-line errors."""

from __future__ import annotations

import pytest
import yaml

from tmatch.errors import TmatchError
from tmatch.train.config import SourceSpec, TrainConfig, apply_overrides, list_presets, load_config


def test_presets_are_shipped_and_valid():
    assert {"seed", "smoke", "neural", "neural-seg", "dual-unet"} <= set(list_presets())
    for name in list_presets():
        cfg = load_config(name)
        assert cfg.name == name
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # round trip


def test_seed_preset_is_the_original_recipe():
    c = load_config("seed")
    assert (c.model.arch, c.model.encoder, c.model.fusion, c.model.input_size) == \
        ("dual-unet", "resnet34", "mul", 512)
    assert (c.optim.name, c.optim.lr, c.optim.schedule, c.optim.milestones, c.optim.gamma) == \
        ("adam", 1e-4, "step", [26], 0.1)  # 1e-4, then 1e-5 after the original's epoch 25
    assert (c.loss.dice, c.loss.bce, c.loss.presence, c.loss.dice_mode) == (1.0, 0.0, 0.0, "batch")
    assert (c.batch_size, c.data.train_pairs, c.data.valid_pairs) == (32, 10_000, 500)
    assert (c.data.protocol, c.data.wrong_query_rate) == ("seed", 0.2)
    assert c.data.protocol_options["seed"] == {"angle": 30.0, "flip_rate": 0.5, "rate": 0.5,
                                               "fill_original": True}
    assert c.metric_threshold == 0.5 and c.monitor == "iou_pooled"


def test_neural_preset_trains_the_presence_head_on_offline_photos():
    c = load_config("neural")
    assert c.model.arch == "neural"
    assert {s.kind for s in c.data.sources} == {"cutouts", "folder", "samples"}
    assert not any("opencv" in str(s.path) for s in c.data.sources)  # held out for evaluation
    assert c.data.protocol == "homography+photometric" and 0.3 <= c.data.wrong_query_rate <= 0.7
    assert c.data.train_size < 1 and c.data.valid_pairs > 0  # validation on held-back photos


def test_neural_seg_preset_recipe():
    c = load_config("neural-seg")
    assert (c.model.arch, c.model.encoder, c.model.pretrained) == ("neural-seg", "efficientnet-lite0", True)
    assert 288 <= c.model.input_size <= 352
    assert c.loss.dice > 0 and c.loss.bce > 0 and c.loss.presence > 0
    assert c.data.protocol == "homography+photometric" and c.data.wrong_query_rate > 0


def test_smoke_preset_is_tiny():
    c = load_config("smoke")
    assert c.model.input_size <= 96 and c.data.train_pairs <= 16 and c.workers == 0


def test_yaml_file_with_base_and_overrides(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text(yaml.safe_dump({"base": "neural-seg", "epochs": 7, "optim": {"lr": 0.002},
                                 "data": {"sources": ["cutouts:/objs", {"path": "/photos", "weight": 2}]}}))
    c = load_config(f)
    assert c.epochs == 7 and c.optim.lr == 0.002
    assert c.optim.schedule == "cosine"  # kept from the base
    assert [s.kind for s in c.data.sources] == ["cutouts", "auto"]
    assert c.data.sources[1].weight == 2
    c2 = apply_overrides(c, epochs=3, batch_size=5, lr=0.1, out=tmp_path / "o", device="cpu",
                         workers=0, data=["samples"])
    assert (c2.epochs, c2.batch_size, c2.optim.lr, c2.device, c2.workers) == (3, 5, 0.1, "cpu", 0)
    assert c2.out_dir == tmp_path / "o" and c2.data.sources[0].kind == "samples"
    assert c.epochs == 7  # the original is not changed


def test_source_spec_parse():
    assert SourceSpec.parse("samples") == SourceSpec(kind="samples")
    assert SourceSpec.parse("coco:/data/coco").kind == "coco"
    assert SourceSpec.parse("/data/photos") == SourceSpec(path="/data/photos")
    assert SourceSpec.parse("cutouts:/x").describe() == "cutouts:/x"


@pytest.mark.parametrize("text, words", [
    ("epochs: 0\n", "epochs"),
    ("optim: {lr: -1}\n", "optim.lr"),
    ("lrr: 0.1\n", "lrr"),
    ("device: gpu7\n", "device"),
    ("model: {arch: neural-seg, input_size: 70}\n", "input_size"),
    ("loss: {dice: 0, bce: 0, presence: 0}\n", "loss"),
    ("epochs: [1\n", "YAML"),
])
def test_bad_config_one_line_error(tmp_path, text, words):
    f = tmp_path / "bad.yaml"
    f.write_text("base: smoke\n" + text)
    with pytest.raises(TmatchError) as e:
        load_config(f)
    msg = str(e.value)
    assert words in msg and "\n" not in msg


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(TmatchError, match="seed"):
        load_config("nosuch")
    with pytest.raises(TmatchError, match="not found"):
        load_config(tmp_path / "missing.yaml")
