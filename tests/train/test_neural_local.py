"""neural-local's training: correspondences from a known homography, the loss, the photo split,
and a tiny resumable run end to end."""

from __future__ import annotations

import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from tmatch.matchers.neural_local.describe import rectified_patches
from tmatch.matchers.neural_local.detect import detect
from tmatch.matchers.neural_local.supervision import correspondences, local_frames
from tmatch.train.config import TrainConfig, load_config
from tmatch.train.neural_local import fpr_at_95, hardest_triplet_loss
from tmatch.train.neural_local_data import photo_groups, split


def _rotated(gray: np.ndarray, angle: float, scale: float):
    h, w = gray.shape
    m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
    hm = np.vstack([m, [0, 0, 1]])
    return cv2.warpAffine(gray, m, (w, h)), hm


def test_feature_correspondences_agree_with_the_homography(astronaut):
    g = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    view, hm = _rotated(g, 70.0, 0.8)
    a, b = detect(g, 600), detect(view, 600)
    pairs = correspondences(a, b, hm)
    assert len(pairs) >= 50
    q, size, _ = local_frames(hm, a.take(pairs[:, 0]))
    err = np.linalg.norm(q - b.points[pairs[:, 1]], axis=1)
    assert np.all(err <= np.maximum(1.5, 0.25 * size) + 1e-9)
    assert len(np.unique(pairs[:, 1])) == len(pairs)  # each B keypoint used once


def test_feature_rectified_patches_are_rotation_invariant(astronaut):
    g = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    view, hm = _rotated(g, 135.0, 1.0)
    a = detect(g, 300)
    a = a.take(np.nonzero((a.sizes > 6) & (np.abs(a.points - 256).max(axis=1) < 120))[0])
    q, size, ang = local_frames(hm, a)
    from tmatch.matchers.neural_local.detect import Keypoints

    b = Keypoints(q, size, ang, a.responses)
    pa, pb = rectified_patches(g, a).astype(float), rectified_patches(view, b).astype(float)
    corr = [np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(pa, pb) if x.std() > 5]
    assert len(corr) >= 10 and np.median(corr) > 0.9


def test_hardest_triplet_loss_rewards_separated_descriptors():
    import torch

    eye = torch.eye(8)
    assert float(hardest_triplet_loss(eye, eye)) < 0.01  # pairs equal, others sqrt(2) away
    assert float(hardest_triplet_loss(eye, eye.roll(1, dims=0))) > 1.0  # every pair wrong
    assert fpr_at_95(eye.numpy(), eye.numpy()) == 0.0


def test_photo_groups_merge_resolutions_and_variants_and_split_by_photo(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    for rel in ("Altai/contents/images/1280x800.png", "Altai/contents/images/5120x2880.png",
                "gnome/wood-l.png", "gnome/wood-d.png", "gnome/sea.jpg", "gnome/hill.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / rel), img)
    groups = photo_groups(tmp_path)
    assert len(groups) == 4
    assert groups[str(tmp_path / "Altai")].name == "1280x800.png"
    train, valid = split(list(groups), 0.5, seed=0)
    assert set(train).isdisjoint(valid) and len(train) + len(valid) == 4
    assert (train, valid) == split(list(groups), 0.5, seed=0)


def test_preset_is_a_valid_config_on_offline_sources():
    c = load_config("neural-local")
    assert c.model.arch == "neural-local"
    assert not any("opencv" in str(s.path) for s in c.data.sources)  # held out for evaluation
    assert all(s.kind != "samples" for s in c.data.sources)  # the benchmark's photos
    assert c.data.protocol_options["homography"]["scale"] == [0.25, 4.0]


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_tiny_run_writes_weights_and_resumes(tmp_path, monkeypatch, astronaut, chelsea, coffee, rocket):
    from tmatch.train.neural_local import train_descriptor

    monkeypatch.setenv("TMATCH_CACHE", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, im in enumerate((astronaut, chelsea, coffee, rocket)):
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    d = load_config("neural-local").to_dict()
    d["data"].update(sources=[{"kind": "folder", "path": str(photos)}], train_pairs=4, valid_pairs=2, train_size=0.5)
    # one page of our own (1 page, 4 scales rendered into the test's cache) instead of the preset's 24
    browser = shutil.which("chromium") is not None or bool(os.environ.get("TMATCH_CHROMIUM"))
    d["data"]["protocol_options"]["descriptor"].update(presence_pairs=4, text_share=0.5, screen_pairs=2 * browser,
                                                       screen_pages=1, screen_seed=7)
    d.update(epochs=1, batch_size=32, out=str(tmp_path / "run"), threads=1)
    lines: list[str] = []
    train_descriptor(TrainConfig.from_dict(d), echo=lines.append)
    run = tmp_path / "run"
    for name in ("neural-local.json", "neural-local.safetensors", "neural-local.onnx", "last.safetensors",
                 "log.csv", "steps.csv", "loss.png"):
        assert (run / name).is_file(), name
    settings = json.loads((run / "neural-local.json").read_text())
    assert settings["matcher"] == "neural-local" and len(settings["presence"]["weights"]) == 5
    assert any("re-rendered screen pairs" in s for s in lines) == browser
    # the exported graph runs the trained weights: onnxruntime and numpy give the same descriptors
    import tmatch

    m = tmatch.load_matcher("neural-local", weights=run / "neural-local.safetensors")
    assert m.describer.runtime == "onnxruntime"
    patches = np.random.default_rng(1).integers(0, 256, (9, 32, 32)).astype(np.uint8)
    from tmatch.matchers.neural_local.describe import Describer

    plain = Describer(run / "neural-local.safetensors")
    assert plain.runtime == "numpy"
    assert np.abs(m.describer(patches) - plain(patches)).max() < 1e-4
    d["epochs"] = 2
    train_descriptor(TrainConfig.from_dict(d), resume=True, echo=lines.append)
    assert any("resuming after epoch 1" in s for s in lines)
    with open(run / "log.csv") as f:
        assert [int(float(r["epoch"])) for r in csv.DictReader(f)] == [1, 2]
    with pytest.raises(Exception, match="already holds a run"):
        train_descriptor(TrainConfig.from_dict(d), echo=lines.append)


def test_numpy_descriptor_equals_the_torch_network(tmp_path):
    """The matcher's numpy runner gives the trained network's descriptors (folded batch norms)."""
    import torch
    from safetensors.torch import save_file

    from tmatch.matchers.neural_local.describe import Describer
    from tmatch.models.descriptor import PatchDescriptor

    torch.manual_seed(0)
    net = PatchDescriptor()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    net.eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    patches = np.random.default_rng(0).integers(0, 256, (7, 32, 32)).astype(np.uint8)
    with torch.no_grad():
        want = net(torch.from_numpy(patches).float()[:, None]).numpy()
    got = Describer(tmp_path / "w.safetensors")(patches)
    assert got.shape == (7, 128)
    assert np.abs(got - want).max() < 1e-4


def test_graph_of_other_weights_is_not_used(tmp_path):
    """A graph exported from other weights (digest differs) is ignored: numpy runs the weights."""
    import torch
    from safetensors.torch import save_file

    from tmatch.matchers.neural_local.describe import Describer, weights_digest
    from tmatch.models.descriptor import PatchDescriptor
    from tmatch.train.neural_local import export_graph

    torch.manual_seed(0)
    a, b = PatchDescriptor().eval(), PatchDescriptor().eval()
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(tmp_path / "a.safetensors"))
    save_file({k: v.contiguous() for k, v in b.state_dict().items()}, str(tmp_path / "b.safetensors"))
    graph = export_graph(b, tmp_path / "b.onnx")
    stale = Describer(tmp_path / "a.safetensors", graph=(graph, weights_digest(tmp_path / "b.safetensors")))
    fresh = Describer(tmp_path / "b.safetensors", graph=(graph, weights_digest(tmp_path / "b.safetensors")))
    assert stale.runtime == "numpy" and fresh.runtime == "onnxruntime"
    patches = np.random.default_rng(0).integers(0, 256, (5, 32, 32)).astype(np.uint8)
    with torch.no_grad():
        want = a(torch.from_numpy(patches).float()[:, None]).numpy()
    assert np.abs(stale(patches) - want).max() < 1e-4


def test_screen_patch_pairs_are_the_same_place_at_two_display_scales(tmp_path):
    """Windows of one page rendered at two scales: the mapped keypoints' patches correlate as
    strongly as an exact crop allows, and far better than unrelated pairs."""
    from tmatch.data.screens import ScreenSource, write_screens
    from tmatch.train.neural_local import DEFAULTS
    from tmatch.train.neural_local_data import mine_screen_patches

    if shutil.which("chromium") is None and not os.environ.get("TMATCH_CHROMIUM"):
        pytest.skip("needs Debian's chromium")
    src = ScreenSource(write_screens(tmp_path / "pages", pages=1, seed=7))
    ps = mine_screen_patches(np.random.default_rng(0), src, 6, dict(DEFAULTS))
    assert len(ps) > 50 and ps.a.shape == ps.b.shape and len(np.unique(ps.pair)) >= 4
    a = ps.a.reshape(len(ps), -1).astype(float)
    b = ps.b.reshape(len(ps), -1).astype(float)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)

    def corr(x, y):
        return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1) + 1e-9)

    assert np.median(corr(a, b)) > 0.8 and np.median(corr(a, np.roll(b, 7, 0))) < 0.5
