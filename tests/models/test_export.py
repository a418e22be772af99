"""ONNX export: two graphs (template, search), parity with PyTorch, and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tmatch.models import ModelConfig, build_model
from tmatch.models.checkpoint import save_checkpoint
from tmatch.models.export import OnnxGraphs, cached_export, export_onnx, parity
from tmatch.models.inputs import prepare_inputs
from tmatch.models.runtime import OnnxRunner, TorchRunner


@pytest.mark.parametrize("cfg", [
    ModelConfig(arch="neural-seg"),
    ModelConfig(arch="dual-unet", input_size=128),
    ModelConfig(arch="dual-unet", encoder="resnet34", fusion="concat", input_size=64),
], ids=["neural", "dual-unet-lite0", "dual-unet-resnet34-concat"])
def test_feature_onnx_matches_pytorch(cfg, tmp_path, astronaut):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    graphs = export_onnx(model, cfg, tmp_path)
    assert graphs.template.is_file() and graphs.search.is_file()
    assert OnnxGraphs.read(tmp_path).config == cfg
    assert parity(model, cfg, graphs) < 1e-3  # real photo, 2 images, 3 template variants


def test_neural_graphs_keep_batch_and_variants_dynamic(tmp_path, coffee, astronaut):
    cfg = ModelConfig(arch="neural-seg", input_size=128, template_size=64)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    onnx_run, torch_run = OnnxRunner(export_onnx(model, cfg, tmp_path)), TorchRunner(model, cfg)
    x = prepare_inputs(cfg, coffee[100:200, 150:300], coffee)
    for k, b in [(1, 1), (5, 3)]:
        q = np.repeat(x.query[None].numpy(), k, 0)
        imgs = np.repeat(x.image[None].numpy(), b, 0)
        a = onnx_run.search(imgs, onnx_run.encode(q))
        t = torch_run.search(imgs, torch_run.encode(q))
        assert a["mask"].shape == (b, 1, 128, 128) and a["presences"].shape == (b, k)
        assert np.abs(a["mask"] - t["mask"]).max() < 1e-3


def test_cache_reuses_an_export_and_renews_it_when_weights_change(tmp_path):
    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    w = save_checkpoint(tmp_path / "w.safetensors", model, cfg)
    first = cached_export(model, cfg, w, root=tmp_path / "cache")
    mtime = first.search.stat().st_mtime_ns
    again = cached_export(model, cfg, w, root=tmp_path / "cache")
    assert again.directory == first.directory and again.search.stat().st_mtime_ns == mtime
    with torch.no_grad():
        model.head.bias.add_(1.0)
    save_checkpoint(w, model, cfg)
    renewed = cached_export(model, cfg, w, root=tmp_path / "cache")
    assert renewed.directory != first.directory
    assert not list((tmp_path / "cache" / "onnx").glob(".export-*"))


# ------------------------------------------------------------------ whole folders only
def test_a_failed_reexport_leaves_the_previous_folder_whole(tmp_path, monkeypatch):
    """The fuzzed failure: a re-export killed half-way mixed old and new graphs. Now the new
    folder is built under a hidden name and renamed into place only when complete."""
    import tmatch.models.export as export
    from tmatch.models.export import export_checkpoint

    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, width=16, pretrained=False)
    ck = save_checkpoint(tmp_path / "m.safetensors", build_model(cfg, pretrained=False), cfg)
    out = tmp_path / "onnx"
    graphs, _ = export_checkpoint(ck, out, check=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = export.export_onnx

    def killed_half_way(model, config, out_dir):
        real(model, config, out_dir)
        (out_dir / "template.onnx").write_bytes(b"new but torn")
        raise KeyboardInterrupt  # stands for the kill

    monkeypatch.setattr(export, "export_onnx", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(ck, out, check=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert OnnxGraphs.read(out).template == graphs.template


def test_export_does_not_replace_a_folder_of_other_files(tmp_path):
    from tmatch.errors import InputError
    from tmatch.models.export import check_export_dir

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds other files than an export"):
        check_export_dir(tmp_path)
    check_export_dir(tmp_path / "new")
