"""The embedded sample set and the `tmatch data` verbs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO
from typer.testing import CliRunner

from tmatch import geometry
from tmatch.cli.main import app
from tmatch.data import open_source, sample_dir, write_samples
from tmatch.data.samples import ANNOTATIONS

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("samples"))


def test_feature_sample_set_is_a_coco_folder_pycocotools_loads(written):
    coco = COCO(str(written / "instances.json"))
    imgs = coco.loadImgs(coco.getImgIds())
    anns = coco.loadAnns(coco.getAnnIds())
    assert 12 <= len(imgs) <= 20 and 30 <= len(anns) <= 60
    assert len(coco.loadCats(coco.getCatIds())) >= 15
    for img in imgs:
        assert (written / "images" / img["file_name"]).is_file()
        assert max(img["width"], img["height"]) <= 640
    for a in anns:
        x, y, w, h = a["bbox"]
        img = coco.imgs[a["image_id"]]
        assert min(w, h) >= 32, a
        assert x >= 0 and y >= 0 and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
        poly = np.asarray(a["segmentation"][0]).reshape(-1, 2)
        assert len(poly) >= 4
        assert np.allclose(poly.min(axis=0), [x, y], atol=0.02)
        assert np.allclose(poly.max(axis=0), [x + w, y + h], atol=0.02)
        m = coco.annToMask(a)
        assert m.shape == (img["height"], img["width"])
        # the mask fills a sensible share of its box (no degenerate outlines)
        assert 0.3 < m.sum() / (w * h) <= 1.05
        assert a["area"] == pytest.approx(geometry.polygon_area(poly), rel=1e-3)


def test_feature_boxes_hold_the_objects_they_name(written):
    """Spot checks against the photos: a coin is a bright disc on a dark ground, the sky is not
    the rocket, the cat's eyes sit above its nose."""
    src = open_source(written, target="mask")
    by_label: dict[str, list] = {}
    for i in range(len(src)):
        p = src.base(i)
        by_label.setdefault(p.meta.label, []).append(p)
    for coin in by_label["coin"]:
        gray = coin.image.mean(axis=2)
        inside = gray[coin.mask].mean()
        ring = geometry.mask_from_polygon(coin.polygon * 1.0, gray.shape) & ~coin.mask
        assert inside > 90 and inside > gray[ring].mean() + 20
    eyes = [p.meta.box for p in by_label["eye"]]
    nose = by_label["nose"][0].meta.box
    assert all(e[1] + e[3] <= nose[1] + 5 for e in eyes)
    rocket = by_label["rocket"][0]
    assert rocket.template.mean() > rocket.image[:100].mean() + 30  # white rocket, night sky


def test_feature_open_source_none_materialises_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TMATCH_CACHE", str(tmp_path / "cache"))
    d = sample_dir()
    assert d.parent == tmp_path / "cache" and (d / "instances.json").is_file()
    stamp = (d / "instances.json").stat().st_mtime_ns
    src = open_source(None)
    assert src.name == "samples" and len(src) == sum(len(v) for v in ANNOTATIONS.values())
    assert sample_dir() == d and (d / "instances.json").stat().st_mtime_ns == stamp
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".samples-")]


def test_smoke_cli_data_samples_stats_show(tmp_path):
    runner = CliRunner()
    out = tmp_path / "s"
    r = runner.invoke(app, ["data", "samples", str(out)])
    assert r.exit_code == 0, r.output
    assert "photos" in r.output and (out / "instances.json").is_file()
    coco = json.loads((out / "instances.json").read_text())
    assert {"images", "annotations", "categories"} <= set(coco)
    r = runner.invoke(app, ["data", "stats", str(out), "--train-size", "0.8"])
    assert r.exit_code == 0, r.output
    assert "pairs from 14 photos" in r.output and "train" in r.output
    png = tmp_path / "pairs.png"
    r = runner.invoke(app, ["data", "show", str(out), "--protocol", "warp+negatives", "--count", "2",
                            "--out", str(png)])
    assert r.exit_code == 0, r.output
    from tmatch.io import read_image

    assert read_image(png).shape[0] > 200


def test_exception_cli_bad_input_is_one_line_exit_2(tmp_path):
    """Through the real entry point: a TmatchError becomes 'error: ...' and exit code 2."""
    r = subprocess.run([sys.executable, "-m", "tmatch", "data", "stats", str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "tmatch", "data", "show", "--protocol", "twist",
                        "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "unknown protocol" in r.stderr
