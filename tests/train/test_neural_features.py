"""Fine-tuning the neural matcher's features: the pairs' geometry, the targets, the loss and the
ONNX export."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tmatch.train import neural_features as mf


@pytest.fixture(scope="module")
def pictures(astronaut, chelsea) -> mf.Pictures:
    from tmatch.data.text_ui import render_ui

    page = render_ui(np.random.default_rng(5), (240, 320))
    shots = {s: cv2.resize(page, (round(320 * s), round(240 * s)), interpolation=cv2.INTER_AREA if s < 1
                           else cv2.INTER_LINEAR) for s in mf.PAGE_SCALES}
    pages = mf.Pages([shots], [[(40, 40, 80, 48), (160, 100, 120, 64)]])
    return mf.Pictures([astronaut[::2, ::2].copy(), chelsea], [], pages)


def _warped_template_agrees(p: mf.FeaturePair) -> float:
    """Correlation of the template warped by the pair's truth with the image where it lands."""
    h, w = p.template.shape[:2]
    t = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    hc = np.linalg.inv(t) @ p.hom @ t  # pixel-centre convention for OpenCV
    H, W = p.image.shape[:2]
    warped = cv2.warpPerspective(p.template, hc, (W, H), flags=cv2.INTER_LINEAR).astype(np.float32)
    inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), hc, (W, H)) > 250
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    a, b = warped[inside].ravel(), p.image.astype(np.float32)[inside].ravel()
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("kind", ["photo", "page"])
def test_pair_truth_maps_the_template_onto_the_image(pictures, kind):
    maker = mf.PairMaker(pictures, damage=0.0, shares=(1, 0, 0, 0) if kind == "photo" else (0, 0, 0, 1))
    rng = np.random.default_rng(1)
    for _ in range(6):
        p = maker(rng)
        assert p.kind in (("photo", "plain") if kind == "photo" else ("page",))
        assert _warped_template_agrees(p) > 0.85
        H, W = p.image.shape[:2]
        cx, cy = p.centre()
        assert 0 <= cx <= W and 0 <= cy <= H


def test_pair_centre_is_where_the_warp_maps_the_crop_centre(pictures):
    maker = mf.PairMaker(pictures, perspective=0.0, damage=0.0, shares=(1, 0, 0, 0), plain=0.0)
    p = maker(np.random.default_rng(3))
    h, w = p.template.shape[:2]
    # a similarity: its scale and angle are the pair's, and the centre is the crop's centre mapped
    a = p.hom[:2, :2] / p.hom[2, 2]
    assert math.hypot(a[0, 0], a[1, 0]) == pytest.approx(p.scale, rel=1e-6)
    assert math.degrees(math.atan2(a[1, 0], a[0, 0])) == pytest.approx(p.angle, abs=1e-6)
    c = p.hom @ [w / 2, h / 2, 1]
    assert np.allclose(p.centre(), c[:2] / c[2])


def test_grid_variant_is_the_nearest_on_the_matchers_grid():
    assert mf.grid_variant(1.0, 3.0) == (1.0, 0.0)
    assert mf.grid_variant(0.72, -27.0) == (0.7, -20.0)
    s, a = mf.grid_variant(2.4, 171.0)
    assert s == pytest.approx(1.19 ** 5) and a == 180.0
    for scale in np.exp(np.linspace(np.log(0.4), np.log(2.5), 40)):
        assert abs(math.log(mf.grid_variant(scale, 0)[0] / scale)) <= math.log(1.19) / 2 + 0.01


def test_target_cell_is_the_frozen_features_peak_on_an_easy_pair(astronaut):
    model = mf.build_model()
    img = astronaut[::2, ::2].copy()
    x0, y0, w, h = 70, 40, 60, 70
    hom = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]])
    p = mf.FeaturePair(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), img, hom, 1.0, 0.0, "photo")
    s = mf.sample(p)
    with torch.no_grad():
        assert mf.pair_loss(model, s).right


def test_loss_decreases_on_a_tiny_batch(pictures):
    torch.manual_seed(0)
    maker = mf.PairMaker(pictures, shares=(1, 0, 0, 0), view_net=(96, 128), side=(32, 48), scale=(0.8, 1.2))
    rng = np.random.default_rng(0)
    batch = [mf.sample(maker(rng)) for _ in range(2)]
    model = mf.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def total():
        out = 0.0
        for s in batch:
            pl = mf.pair_loss(model, s)
            out = out + pl.loss8 + 0.3 * pl.loss4
        return out

    with torch.no_grad():
        first = float(total())
    for _ in range(5):
        opt.zero_grad()
        total().backward()
        opt.step()
    with torch.no_grad():
        assert float(total()) < first


def test_export_round_trip_matches_torch(tmp_path):
    from tmatch.models.features import onnx_session

    model = mf.build_model()
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(0.01 * torch.randn_like(prm))  # not the shipped weights
    path = mf.export_onnx(model, tmp_path / "lite0-match.onnx")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 96)).astype(np.float32)
    sess = onnx_session(path, 1)
    assert [o.name for o in sess.get_outputs()] == ["f2", "f4", "f8"]
    got = sess.run(None, {"image": x})
    with torch.no_grad():
        want = [t.numpy() for t in model(torch.from_numpy(x))]
    for g, w_ in zip(got, want):
        assert g.shape == w_.shape
        assert np.abs(g - w_).max() < 1e-4


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_resumed_state_restores_model_optimizer_step_and_rng(tmp_path, pictures):
    rec = mf.Recipe(minutes=0.05, batch=1, checkpoint_s=1e9)
    mf.train(tmp_path, rec, echo=lambda m: None, pictures=pictures)
    st = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    step = st["step"]
    assert step >= 1 and "state" in st["optim"]
    mf.train(tmp_path, mf.Recipe(minutes=0.1, batch=1, checkpoint_s=1e9), echo=lambda m: None, pictures=pictures)
    st2 = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert st2["step"] > step and st2["rng"] != st["rng"]
    rows = (tmp_path / "loss.csv").read_text().strip().splitlines()
    assert len(rows) == st2["step"] + 1  # header + one row a step, across the resume
