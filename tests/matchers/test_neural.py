"""The default ``neural`` matcher: ImageNet-feature correlation, refinement, trained presence head.

The contract runs with the presence head shipped in tmatch/weights/neural.safetensors; the
geometry tests also run without it (``allow_untrained``: a fixed threshold on the coarse peak).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import tmatch
from tests.matchers.base import MatcherContract, corner_error, place
from tmatch import geometry
from tmatch.errors import CheckpointError, InputError
from tmatch.models.presence import STAT_NAMES, MatchStats, PresenceHead
from tmatch.models.weights import matcher_of, shipped_weights
from tmatch.train.neural import evaluate, fit_logistic

SHIPPED = shipped_weights("neural").is_file()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TMATCH_CACHE", str(tmp_path_factory.getbasetemp() / "tmatch-cache"))


@pytest.fixture(scope="module")
def neural():
    return tmatch.load_matcher("neural", allow_untrained=True, threads=1)


@pytest.mark.skipif(not SHIPPED, reason="no presence head installed")
class TestNeuralContract(MatcherContract):
    """Corners within 4 px after a scale/rotation change, exact crops at IoU ≥ 0.95, three
    pasted copies each within 6 px: the same bars as SIFT's."""

    name = "neural"
    options = {"threads": 1}


# ---------------------------------------------------------------- geometry
@pytest.mark.parametrize("scale,angle", [(1.0, 0.0), (0.75, -20.0), (1.35, 15.0), (1.1, 30.0)])
def test_placed_crop_corners_across_scale_and_rotation(neural, coffee, chelsea, scale, angle):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 240, 180, scale, angle)
    m = neural.match(tpl, scene)
    assert m.found and m.homography is not None
    # the refined similarity is within a few pixels even between the searched scales/angles
    assert corner_error(m, hm, tpl.shape[:2]) <= 5.0


def test_exact_crops_of_real_photos(neural, astronaut, coffee, chelsea, rocket):
    rng = np.random.default_rng(3)
    ious = []
    for photo in (astronaut, coffee, chelsea, rocket):
        H, W = photo.shape[:2]
        for _ in range(4):
            w, h = int(rng.integers(W // 6, W // 3)), int(rng.integers(H // 6, H // 3))
            x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
            m = neural.match(photo[y:y + h, x:x + w], photo)
            truth = geometry.mask_from_polygon(geometry.rect_polygon(x, y, w, h), (H, W))
            ious.append(geometry.iou(m.mask, truth) if m.found else 0.0)
    # one known miss: a lattice tower against a blank sky in `rocket` (little texture to refine on)
    assert np.mean(ious) >= 0.9 and sum(v >= 0.9 for v in ious) >= 15


def test_photometric_damage_is_tolerated(neural, coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 240, 180, 0.9, 10.0)
    dark = np.clip(scene.astype(np.float32) * 0.55 + 20, 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(dark, (0, 0), 1.5)
    m = neural.match(tpl, blurred)
    assert m.found and corner_error(m, hm, tpl.shape[:2]) <= 8.0


def test_result_carries_the_search_details(neural, astronaut):
    m = neural.match(astronaut[100:220, 150:300], astronaut)
    assert {"presence", "peak", "scale", "angle", "refined"} <= set(m.extra)
    assert m.extra["refined"] >= 2
    assert m.extra["scale"] == pytest.approx(1.0, abs=0.02) and m.extra["angle"] == pytest.approx(0.0, abs=1.0)


def test_small_and_large_templates(neural, astronaut):
    for x, y, w, h in [(200, 180, 28, 24), (40, 40, 400, 420)]:
        m = neural.match(astronaut[y:y + h, x:x + w], astronaut)
        truth = geometry.mask_from_polygon(geometry.rect_polygon(x, y, w, h), astronaut.shape[:2])
        assert m.found and geometry.iou(m.mask, truth) >= 0.8


def test_match_many_reuses_the_template_work(neural, astronaut, rocket):
    tpl = astronaut[30:180, 170:300]
    prepared = neural.prepare(tpl)
    neural.match_prepared_many(prepared, tpl, [astronaut, astronaut, rocket, rocket[::2, ::2].copy()])
    # one coarse encoding per resize factor: the template's size sets it, unless the image is
    # so small that the factor is capped
    assert len(prepared.by_r) == 1


def test_negative_template_is_absent_with_the_shipped_head(astronaut, coffee, chelsea, rocket):
    if not SHIPPED:
        pytest.skip("no presence head installed")
    m = tmatch.load_matcher("neural", threads=1)
    absent = [m.match(coffee[100:200, 100:220], im).found for im in (astronaut, chelsea, rocket)]
    absent += [m.match(chelsea[50:170, 100:260], im).found for im in (astronaut, rocket)]
    assert not any(absent)


# ---------------------------------------------------------------- options, files
@pytest.mark.parametrize("opts", [{"runtime": "tensorrt"}, {"device": "tpu"}, {"scales": (0.0, 1.0)},
                                  {"rotations": ()}, {"template_side": 4}, {"coarse_side": 9999},
                                  {"presence_threshold": 2.0}, {"threads": 0}, {"max_upscale": 0.0}])
def test_bad_options_raise_input_error(opts):
    with pytest.raises(InputError):
        tmatch.load_matcher("neural", allow_untrained=True, **opts)


def test_presence_file_round_trip_and_bad_files(tmp_path):
    k = len(STAT_NAMES)
    head = PresenceHead(weight=np.arange(1.0, k + 1), bias=-0.5, mean=np.zeros(k), std=np.ones(k),
                        projection=np.eye(40, dtype=np.float32)[:16])
    p = head.save(tmp_path / "h.safetensors", {"note": "x", "metrics": {"a": 1}})
    back = PresenceHead.load(p)
    assert np.allclose(back.weight, head.weight) and back.bias == pytest.approx(-0.5)
    assert back.projection.shape == (16, 40)
    assert back.meta["note"] == "x" and json.loads(back.meta["metrics"]) == {"a": 1}
    assert matcher_of(p) == "neural"  # the file names its matcher
    with pytest.raises(CheckpointError, match="not found"):
        PresenceHead.load(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot read"):
        tmatch.load_matcher("neural", weights=bad)


def test_a_network_checkpoint_is_refused_with_the_right_matcher_named(tmp_path):
    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint

    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
    p = save_checkpoint(tmp_path / "net.safetensors", build_model(cfg).eval(), cfg)
    with pytest.raises(CheckpointError, match="neural-seg"):
        tmatch.load_matcher("neural", weights=p)


def test_onnx_and_torch_features_agree(astronaut):
    from tmatch.models.features import Lite0Features, normalize

    x = normalize(astronaut[::4, ::4].copy())[None]
    a = Lite0Features(runtime="onnx", threads=1)(x)
    b = Lite0Features(runtime="torch", device="cpu", threads=1)(x)
    assert [u.shape for u in a] == [v.shape for v in b] == [(1, 16, 64, 64), (1, 24, 32, 32), (1, 40, 16, 16)]
    assert max(float(np.abs(u - v).max()) for u, v in zip(a, b)) < 1e-3


def test_runtimes_give_the_same_match(astronaut):
    tpl = astronaut[100:220, 150:300]
    a = tmatch.load_matcher("neural", allow_untrained=True, runtime="onnx", threads=1).match(tpl, astronaut)
    b = tmatch.load_matcher("neural", allow_untrained=True, runtime="torch", threads=1).match(tpl, astronaut)
    assert np.abs(a.polygon - b.polygon).max() < 0.5


# ---------------------------------------------------------------- presence head
def test_statistics_are_typed_and_read_by_name(neural, astronaut):
    stats, hm = neural.statistics(astronaut[100:220, 150:260], astronaut)
    assert isinstance(stats, MatchStats) and hm.shape == (3, 3)
    assert tuple(stats.as_array()) == tuple(getattr(stats, n) for n in STAT_NAMES)
    assert stats.verify > 0.5 and stats.stages > 0


def test_fit_logistic_separates_and_balances_classes():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0.6, 0.05, (300, 6)), rng.normal(0.25, 0.05, (60, 6))])
    y = np.r_[np.ones(300), np.zeros(60)]
    head = fit_logistic(x, y)
    p = head.probability(x)
    assert ((p >= 0.5) == (y > 0.5)).mean() > 0.98
    with pytest.raises(tmatch.TmatchError, match="both"):
        fit_logistic(x[:10], y[:10])


def test_evaluate_counts_absent_found_and_gated_iou():
    head = PresenceHead(weight=np.array([10.0, 0, 0, 0, 0, 0]), bias=-5.0, mean=np.zeros(6), std=np.ones(6))
    stats = np.zeros((4, 6))
    stats[[0, 2], 0] = 1.0
    present = np.array([True, True, False, False])
    iou = np.array([0.9, 0.8, 0.0, 0.0])
    m = evaluate(head, stats, present, iou)
    assert m["found"] == 0.5 and m["correct_absent"] == 0.5 and m["iou"] == pytest.approx(0.45)
    assert m["iou_ungated"] == pytest.approx(0.85)


def test_train_preset_neural_fits_and_writes_a_loadable_head(tmp_path):
    """The `tmatch train --preset neural` path end to end, on the embedded samples."""
    from typer.testing import CliRunner

    from tmatch.cli.main import app

    d = tmp_path / "cfg.yaml"
    d.write_text("base: neural\ndata:\n  sources: [samples]\n  train_pairs: 24\n  valid_pairs: 12\n"
                 "  wrong_query_rate: 0.5\n")
    res = CliRunner().invoke(app, ["train", str(d), "--out", str(tmp_path / "run"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    run = tmp_path / "run"
    assert {"best.safetensors", "logs.json", "config.yaml", "stats.npz", "card.md"} <= {p.name for p in run.iterdir()}
    logs = json.loads((run / "logs.json").read_text())
    assert logs["metrics"]["train"]["pairs"] == 24 and "valid" in logs["metrics"]
    m = tmatch.load_matcher("neural", weights=run / "best.safetensors", threads=1)
    assert m.meta["name"] == "neural"
    assert "## Metrics" in (run / "card.md").read_text()
    again = CliRunner().invoke(app, ["train", str(d), "--out", str(run), "--threads", "1"])
    assert isinstance(again.exception, tmatch.TmatchError) and "--overwrite" in str(again.exception)


def test_cli_export_writes_features_and_head(tmp_path):
    if not SHIPPED:
        pytest.skip("no presence head installed")
    from typer.testing import CliRunner

    from tmatch.cli.main import app

    res = CliRunner().invoke(app, ["export", "--weights", str(shipped_weights("neural")),
                                   "--out", str(tmp_path / "onnx")])  # no --method: the file says
    assert res.exit_code == 0, res.output
    assert res.output.startswith("neural: wrote") and "parity" in res.output
    assert {p.name for p in (tmp_path / "onnx").iterdir()} == {"features.onnx", "presence.json"}


def test_train_preset_neural_with_a_missing_source_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from tmatch.cli.main import app

    d = tmp_path / "cfg.yaml"
    d.write_text("base: neural\ndata:\n  sources: [{kind: folder, path: /no/such/photos}]\n")
    res = CliRunner().invoke(app, ["train", str(d), "--out", str(tmp_path / "run")])
    assert isinstance(res.exception, tmatch.TmatchError) and "not found" in str(res.exception)
    assert not (tmp_path / "run").exists()


def test_train_preset_neural_refuses_torchrun_and_resume(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tmatch.cli.main import app

    res = CliRunner().invoke(app, ["train", "neural", "--out", str(tmp_path / "r"), "--resume"])
    assert isinstance(res.exception, tmatch.TmatchError)  # nothing to resume / one pass
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    res = CliRunner().invoke(app, ["train", "neural", "--out", str(tmp_path / "r")])
    assert isinstance(res.exception, tmatch.TmatchError) and "torchrun" in str(res.exception)
    assert not (tmp_path / "r").exists()


def test_another_features_graph_is_used_and_a_missing_one_refused(astronaut):
    from tmatch.errors import InputError
    from tmatch.models.features import SHIPPED_FEATURES, SHIPPED_MATCH, graph_path

    tpl = astronaut[100:220, 150:260]
    assert graph_path() == SHIPPED_MATCH  # the fine-tuned stages are the default
    a = tmatch.load_matcher("neural").match(tpl, astronaut)
    m = tmatch.load_matcher("neural", features=str(SHIPPED_MATCH))
    assert m._features.graph == SHIPPED_MATCH and m.match(tpl, astronaut).box == a.box
    imagenet = tmatch.load_matcher("neural", features=str(SHIPPED_FEATURES))  # the ablation's graph
    assert imagenet._features.graph == SHIPPED_FEATURES and imagenet.match(tpl, astronaut).found
    with pytest.raises(InputError, match="features graph not found"):
        tmatch.load_matcher("neural", features="/no/such.onnx")
