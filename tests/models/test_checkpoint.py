"""Checkpoints: safetensors + JSON config, atomic, never unpickled; bad files give clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from tmatch.errors import CheckpointError
from tmatch.models import ModelConfig, build_model
from tmatch.models.checkpoint import load_checkpoint, read_header, save_checkpoint, sidecar_path

CFG = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(CFG).eval()
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "sub" / "m.safetensors", model, CFG,
                           meta={"data": "skimage", "metrics": {"iou": 0.5}})
    return model, path


def test_round_trip_restores_config_meta_and_outputs(saved):
    model, path = saved
    loaded, cfg, meta = load_checkpoint(path)
    assert cfg == CFG and meta == {"data": "skimage", "metrics": {"iou": 0.5}}
    assert not loaded.training
    x, q = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, q)["mask"], loaded(x, q)["mask"])


def test_sidecar_json_and_header_describe_the_file(saved):
    _, path = saved
    side = json.loads(sidecar_path(path).read_text())
    assert side["config"] == CFG.to_dict() and side["meta"]["data"] == "skimage"
    assert read_header(path)[0] == CFG
    assert not list(path.parent.glob("*.tmp"))  # atomic write left no temporary file


def test_half_precision_file_is_smaller_and_loads_as_float32(saved, tmp_path):
    model, path = saved
    half = save_checkpoint(tmp_path / "h.safetensors", model, CFG, half=True)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    loaded, _, _ = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x, q = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x, q)["mask"], loaded(x, q)["mask"], atol=0.05)


def _one_line_error(path) -> str:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_and_empty_files(tmp_path):
    assert "not found" in _one_line_error(tmp_path / "nope.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    assert "empty" in _one_line_error(tmp_path / "empty.safetensors")


def test_corrupt_and_truncated_files(saved, tmp_path):
    _, path = saved
    (tmp_path / "junk.safetensors").write_bytes(b"this is not a checkpoint at all" * 10)
    assert "corrupt" in _one_line_error(tmp_path / "junk.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    assert "corrupt" in _one_line_error(tmp_path / "cut.safetensors")


def test_pickled_torch_file_is_refused_not_unpickled(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    assert "corrupt" in _one_line_error(tmp_path / "model.pt")


def test_foreign_safetensors_without_config(tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    assert "not a tmatch checkpoint" in _one_line_error(tmp_path / "foreign.safetensors")


def test_weights_that_do_not_fit_the_config(saved, tmp_path):
    model, _ = saved
    # weights of a width-64 model declared as a width-32 one
    path = save_checkpoint(tmp_path / "w.safetensors", model, CFG)
    from safetensors import safe_open
    from safetensors.torch import load_file, save
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        md = dict(f.metadata())
    md["tmatch_config"] = json.dumps(CFG.replace(width=32).to_dict())
    (tmp_path / "bad.safetensors").write_bytes(save(tensors, metadata=md))
    msg = _one_line_error(tmp_path / "bad.safetensors")
    assert "does not fit" in msg and "wrong shape" in msg
    md["tmatch_config"] = json.dumps({"arch": "neural-seg", "input_size": 100})
    (tmp_path / "cfg.safetensors").write_bytes(save(tensors, metadata=md))
    assert "unusable config" in _one_line_error(tmp_path / "cfg.safetensors")


# ------------------------------------------------------------------ untrusted configs
def _with_config(src, dst, **changes):
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(src), framework="numpy") as f:
        md = dict(f.metadata())
    cfg = {**json.loads(md["tmatch_config"]), **changes}
    save_file(load_file(str(src)), str(dst), metadata={**md, "tmatch_config": json.dumps(cfg)})
    return dst


def _small(tmp_path):
    from tmatch.models import ModelConfig, build_model

    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, width=16, pretrained=False)
    return save_checkpoint(tmp_path / "small.safetensors", build_model(cfg, pretrained=False), cfg)


def test_a_config_asking_for_a_giant_network_is_refused_before_allocating(tmp_path, monkeypatch):
    """The fuzzed file: 200,000 channels would need ~160 GB; refused from the header."""
    huge = _with_config(_small(tmp_path), tmp_path / "huge.safetensors", width=200000)
    import tmatch.models as models

    def no_build(*a, **k):  # nothing may be built for such a file
        raise AssertionError("a model was built")

    monkeypatch.setattr(models, "build_model", no_build)
    with pytest.raises(CheckpointError, match="width must be a multiple of 8 in"):
        load_checkpoint(huge)


def test_tensors_that_do_not_fit_are_found_before_the_model_is_built(tmp_path, monkeypatch):
    misfit = _with_config(_small(tmp_path), tmp_path / "misfit.safetensors", width=24)
    import tmatch.models as models

    real = models.build_model
    built = []

    def spy(cfg, *a, **k):
        import torch

        built.append(torch.empty(0).device.type)  # the default device at build time
        return real(cfg, *a, **k)

    monkeypatch.setattr(models, "build_model", spy)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(misfit)
    assert built == ["meta"]  # only the shape check on the meta device ran


def test_a_presence_head_given_as_a_network_names_its_matcher(tmp_path):
    from tmatch.models.presence import PresenceHead

    p = PresenceHead.untrained().save(tmp_path / "head.safetensors")
    with pytest.raises(CheckpointError, match="'neural' matcher.*use --method neural "):
        load_checkpoint(p)
