from __future__ import annotations

import numpy as np
import pytest

import tmatch
from tmatch import geometry
from tests.matchers.base import MatcherContract, place


class TestNCC(MatcherContract):
    name = "ncc"
    corner_tolerance = 1.0
    placement = (1.0, 0.0)  # single-scale NCC handles translation only
    exact_iou = 0.99


class TestNCCMultiScale(MatcherContract):
    name = "ncc"
    options = {"scales": (0.7, 1.3), "steps": 13}
    corner_tolerance = 6.0
    placement = (0.8, 0.0)
    exact_iou = 0.95


@pytest.mark.parametrize("photo", ["astronaut", "chelsea", "coffee", "rocket"])
def test_ncc_finds_exact_crops_of_real_photos(photo, request):
    img = request.getfixturevalue(photo)
    rng = np.random.default_rng(1)
    matcher = tmatch.load_matcher("ncc")
    H, W = img.shape[:2]
    for _ in range(5):
        w, h = int(rng.integers(40, W // 3)), int(rng.integers(40, H // 3))
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        m = matcher.match(img[y:y + h, x:x + w], img)
        truth = geometry.mask_from_polygon(geometry.rect_polygon(x, y, w, h), (H, W))
        assert geometry.iou(m.mask, truth) >= 0.95


def test_ncc_threshold_reports_absent(coffee):
    m = tmatch.load_matcher("ncc", threshold=0.99).match(coffee[:80, :80], np.ascontiguousarray(coffee[::-1, ::-1]))
    assert not m.found and m.score < 0.99


def test_ncc_flat_template_does_not_crash(coffee):
    m = tmatch.load_matcher("ncc").match(np.full((30, 30, 3), 200, np.uint8), coffee)
    assert not m.found


def test_ncc_multiscale_recovers_scale(coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170, 0.75, 0.0)
    m = tmatch.load_matcher("ncc", scales=(0.6, 1.2), steps=15).match(tpl, scene)
    assert abs(m.extra["scale"] - 0.75) < 0.05


@pytest.mark.parametrize("scales", [(0.0, 1.0), (-1.0,), (1.0, 500.0), ()])
def test_ncc_bad_scales_rejected(scales):
    with pytest.raises(tmatch.InputError):
        tmatch.load_matcher("ncc", scales=scales)
