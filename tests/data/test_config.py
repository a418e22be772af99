"""DataConfig: the original's environment names, .env files, YAML, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tmatch.data import DataConfig
from tmatch.errors import DataError

ENV_NAMES = ("TRAIN_DIR", "TRAIN_ANNOTATION_DIR", "VAL_DIR", "VAL_ANNOTATION_DIR", "MAX_SIDE",
             "WRONG_QUERY_RATE", "PROTOCOL", "SEED", "TRAIN_SIZE", "TARGET", "KIND", "MIN_QUERY_HW")


@pytest.fixture()
def clean_env(tmp_path, monkeypatch):
    """A working folder without .env and without the settings in the environment."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_feature_defaults_match_the_original(clean_env):
    c = DataConfig()
    assert c.train_dir is None and c.val_dir is None
    assert (c.min_query_hw, c.wrong_query_rate, c.train_size, c.target) == (32, 0.2, 0.9, "box")


def test_feature_dotenv_with_the_original_names(clean_env, coco_factory, astronaut, coffee):
    ann = coco_factory({"a.png": astronaut, "c.png": coffee},
                       [{"file": "a.png", "bbox": [150, 20, 130, 150]},
                        {"file": "c.png", "bbox": [180, 20, 220, 240]}])
    images = ann.parent / "images"
    (clean_env / ".env").write_text(
        f"TRAIN_DIR={images}\nTRAIN_ANNOTATION_DIR={ann}\nVAL_DIR={images}\n"
        f"VAL_ANNOTATION_DIR={ann.parent}\nMAX_SIDE=320\nWRONG_QUERY_RATE=0.3\nUNRELATED=1\n")
    c = DataConfig()
    assert c.train_dir == images and c.train_annotation_dir == ann
    assert c.val_annotation_dir == ann.parent
    assert c.max_side == 320 and c.wrong_query_rate == 0.3
    train, val = c.train_source(), c.val_source()
    assert len(train) == 2 and len(val) == 2
    assert max(train.base(1).image.shape[:2]) == 320


def test_feature_environment_overrides_dotenv_and_arguments_override_both(clean_env, monkeypatch):
    (clean_env / ".env").write_text("TRAIN_DIR=/from/dotenv\nSEED=1\n")
    monkeypatch.setenv("TRAIN_DIR", "/from/env")
    c = DataConfig()
    assert c.train_dir == Path("/from/env") and c.seed == 1
    assert DataConfig(train_dir="/from/arg").train_dir == Path("/from/arg")
    monkeypatch.setenv("VAL_DIR", "")
    assert DataConfig().val_dir is None


def test_feature_yaml_round_trip_and_env_fills_the_rest(clean_env, monkeypatch):
    monkeypatch.setenv("VAL_DIR", "/data/val")
    path = clean_env / "data.yaml"
    path.write_text("data:\n  train_dir: /data/train\n  protocol: homography + photometric\n  max_side: 512\n")
    c = DataConfig.from_yaml(path)
    assert c.train_dir == Path("/data/train") and c.val_dir == Path("/data/val")
    assert c.protocol == "homography+photometric" and c.max_side == 512
    assert DataConfig.from_yaml(path, max_side=256).max_side == 256
    again = DataConfig.from_yaml(c.to_yaml(clean_env / "out.yaml"))
    assert again == c


def test_exception_bad_settings_are_one_line_data_errors(clean_env):
    bad = clean_env / "bad.yaml"
    bad.write_text("train_dirr: /x\n")
    with pytest.raises(DataError, match="unknown data setting 'train_dirr'"):
        DataConfig.from_yaml(bad)
    bad.write_text("protocol: twist\n")
    with pytest.raises(DataError, match="unknown protocol"):
        DataConfig.from_yaml(bad)
    bad.write_text("wrong_query_rate: 1.5\n")
    with pytest.raises(DataError, match="wrong_query_rate"):
        DataConfig.from_yaml(bad)
    bad.write_text("- a list\n")
    with pytest.raises(DataError, match="mapping"):
        DataConfig.from_yaml(bad)
    with pytest.raises(DataError, match="not found"):
        DataConfig.from_yaml(clean_env / "missing.yaml")
    with pytest.raises(DataError, match="max_side"):
        DataConfig.load(max_side=10)


def test_feature_no_paths_means_the_sample_set(clean_env):
    c = DataConfig()
    assert c.train_source().name == "samples" and c.val_source() is None
