"""From a config's data section to datasets: sources, env names, protocol options, splits."""

from __future__ import annotations

import pytest

from tests.train.conftest import tiny
from tmatch.errors import TmatchError
from tmatch.train.data import build_data, env_sources, protocol_steps


def test_protocol_options_customise_named_steps():
    steps = protocol_steps("seed+photometric", {"seed": {"angle": 30.0, "flip_rate": 0.5},
                                                "photometric": {"strength": 0.5}})
    assert (steps[0].angle, steps[0].flip_rate, steps[1].strength) == (30.0, 0.5, 0.5)
    assert protocol_steps("homography", {"homography": {"scale": [0.8, 1.2]}})[0].scale == (0.8, 1.2)
    with pytest.raises(TmatchError, match="unknown protocol"):
        protocol_steps("seed", {"sede": {"angle": 1}})
    with pytest.raises(TmatchError, match="bad protocol_options"):
        protocol_steps("seed", {"seed": {"nope": 1}})


def test_split_sources_and_fixed_validation(tmp_path):
    cfg = tiny(tmp_path, data={"sources": ["samples", {"kind": "samples", "weight": 3}],
                               "train_size": 0.75, "train_pairs": 20, "valid_pairs": 6,
                               "protocol": "seed", "protocol_options": {"seed": {"angle": 30.0}}})
    b = build_data(cfg)
    assert len(b.train) == 20 and len(b.valid) == 6
    assert b.train.weights.tolist() == [0.25, 0.75]
    d = b.description
    assert [s["weight"] for s in d["train_sources"]] == [1.0, 3.0]
    assert d["valid_pairs"] == 6 and d["protocol"] == "seed"
    assert b.train.steps[0].angle == 30.0
    # Train and validation photos are disjoint in each source.
    tr, va = b.train.indices[0], b.valid.indices[0]
    src = b.train.sources[0]
    assert {src.image_key(int(i)) for i in tr}.isdisjoint({src.image_key(int(i)) for i in va})


def test_no_validation_when_asked(tmp_path):
    b = build_data(tiny(tmp_path, data={"sources": ["samples"], "valid_pairs": 0}))
    assert b.valid is None and b.description["valid_pairs"] == 0


def test_original_env_names_pick_the_coco_folders(tmp_path, monkeypatch):
    from tmatch.data import sample_dir

    d = sample_dir()
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TRAIN_DIR", str(d / "images"))
    monkeypatch.setenv("TRAIN_ANNOTATION_DIR", str(d / "instances.json"))
    monkeypatch.setenv("VAL_DIR", str(d / "images"))
    monkeypatch.setenv("VAL_ANNOTATION_DIR", str(d / "instances.json"))
    train, valid = env_sources()
    assert train[0].annotations == str(d / "instances.json") and valid is not None
    b = build_data(tiny(tmp_path / "o", data={"sources": [], "train_pairs": 4, "valid_pairs": 2}))
    assert b.description["train_sources"][0]["kind"] == "coco"
    assert b.description["valid_sources"][0]["pairs"] == len(b.valid.sources[0])
    for k in ("TRAIN_DIR", "TRAIN_ANNOTATION_DIR", "VAL_DIR", "VAL_ANNOTATION_DIR"):
        monkeypatch.delenv(k)
    assert env_sources()[0][0].kind == "samples"
