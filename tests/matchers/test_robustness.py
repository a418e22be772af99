"""Correct and calm on every input: determinism, degenerate geometry, templates larger than the
image, flat templates, bounded working size, per-image errors, several templates at once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tests.matchers.base import corner_error, place
from tmatch import geometry
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.features import FeatureMatcher
from tmatch.registry import MATCHERS, matcher_class

#: options that load a matcher without trained weights where none are shipped (torch runtime:
#: no graph export in the tests); every other registered matcher loads with its defaults.
LOAD_OPTIONS = {"neural": {"runtime": "torch"}, "neural-seg": {"runtime": "torch"},
                "dual-unet": {"allow_untrained": True, "runtime": "torch"}, "hybrid": {"runtime": "torch"}}
#: every registered matcher (a new one is covered without editing this file).
ALL = {name: LOAD_OPTIONS.get(name, {}) for name in MATCHERS}
#: scale-invariant matchers that must find a larger template: every one that declares
#: ``scale_invariant`` except those that are not expected to find it (untrained or experimental).
NOT_EXPECTED_TO_FIND = {"dual-unet": "untrained in the tests", "neural-seg": "experimental, coarse masks"}
SCALE_FREE = tuple(n for n in MATCHERS if matcher_class(n).scale_invariant and n not in NOT_EXPECTED_TO_FIND)


def _key(m: Match) -> tuple:
    poly = None if m.polygon is None else tuple(np.round(m.polygon, 6).ravel())
    return m.found, round(m.score, 9), poly, m.box, int(m.mask.sum()), m.extra.get("rejected")


@pytest.fixture(scope="module")
def ambiguous_pair():
    """A pair where SIFT's few matches are ambiguous: unseeded FLANN gave different answers
    (and zero-area 'found' polygons) from call to call."""
    from skimage import data

    return data.hubble_deep_field()[50:250, 50:250], cv2.GaussianBlur(data.coffee(), (0, 0), 2)


# ------------------------------------------------------------------ determinism
def test_feature_sift_same_answer_in_30_calls_on_an_ambiguous_pair(ambiguous_pair):
    tpl, img = ambiguous_pair
    m = tmatch.load_matcher("sift")
    keys = {_key(m.match(tpl, img)) for _ in range(30)}
    assert len(keys) == 1


@pytest.mark.parametrize("name", list(ALL))
def test_feature_same_pair_same_match_in_10_calls(name, astronaut, coffee):
    m = tmatch.load_matcher(name, **ALL[name])
    img = cv2.resize(coffee, (200, 133))
    tpl = cv2.resize(astronaut[60:260, 140:340], (60, 60))
    img, _ = place(tpl, img, 110, 70, 1.1, 8.0)
    first = _key(m.match(tpl, img))
    assert all(_key(m.match(tpl, img)) == first for _ in range(9))


# ------------------------------------------------------------ degenerate geometry
class _Fixed(Matcher):
    """Answers a fixed polygon as found (what a broken homography fit produces)."""

    name = "fixed"

    def __init__(self, polygon, **options):
        super().__init__(**options)
        self.polygon = np.asarray(polygon, np.float64)

    def _match(self, prepared, template, image):
        hm = np.eye(3)
        return Match(True, 0.29, self.polygon, geometry.box_from_polygon(self.polygon, image.shape[:2]),
                     geometry.mask_from_polygon(self.polygon, image.shape[:2]), homography=hm)


@pytest.mark.parametrize("polygon, why", [
    (np.full((4, 2), 50.0), "zero area"),
    ([[10, 10], [90, 70], [90, 10], [10, 60]], "self-crossing"),
    ([[10, 10], [90, 10], [30, 30], [10, 90]], "non-convex"),
    ([[10, 10], [10.5, 10], [10.5, 10.5], [10, 10.5]], "zero area"),
    ([[0, 0], [99, 0], [99, 0.8], [0, 0.8]], "squashed to a sliver"),
])
def test_exception_degenerate_geometry_is_not_found(polygon, why, astronaut):
    r = _Fixed(polygon).match(astronaut[:40, :40], astronaut[:100, :100])
    assert not r.found and r.extra["rejected"] == why and not r.mask.any() and r.polygon is None


def test_feature_sift_rejects_the_zero_area_answer(ambiguous_pair):
    r = tmatch.load_matcher("sift").match(*ambiguous_pair)
    assert not r.found and r.box is None


def test_feature_degenerate_reasons():
    assert geometry.degenerate(geometry.rect_polygon(0, 0, 10, 10), (10, 10), (20, 20)) is None
    assert geometry.degenerate(geometry.rect_polygon(0, 0, 10, 10), (1000, 1000)) == "absurd scale"
    assert geometry.degenerate(geometry.rect_polygon(50, 50, 10, 10), (10, 10), (20, 20)) == "outside the image"
    assert geometry.degenerate(np.array([[0, 0], [np.nan, 0], [1, 1], [0, 1]])) == "non-finite corners"
    bow = np.array([[0, 0], [20, 30], [20, 0], [0, 20.0]])
    assert not geometry.is_simple(bow) and geometry.degenerate(bow, convex=False) == "self-crossing"


# ------------------------------------------------- templates larger than the image
@pytest.fixture(scope="module")
def zoomed_out(request):
    """A 420×560 template seen at 0.4× in a 300×400 image: larger than the whole image."""
    from skimage import data

    tpl = cv2.resize(data.astronaut()[40:360, 80:500], (560, 420), interpolation=cv2.INTER_CUBIC)
    bg = cv2.resize(data.coffee(), (400, 300))
    img, hm = place(tpl, bg, 230, 150, 0.4, 0.0)
    return tpl, img, hm


@pytest.mark.parametrize("name", SCALE_FREE)
def test_feature_template_larger_than_image_is_found(name, zoomed_out):
    tpl, img, hm = zoomed_out
    r = tmatch.load_matcher(name, **ALL[name]).match(tpl, img)
    assert r.found, r.extra
    assert corner_error(r, hm, tpl.shape[:2]) < 12.0
    assert r.mask.shape == img.shape[:2]
    assert np.allclose(geometry.template_polygon(r.homography, tpl.shape[:2]), r.polygon, atol=1e-6)


@pytest.mark.parametrize("name,share", [("sift", 1.0), ("neural-local", 1.0), ("neural", 0.5)])
def test_feature_larger_template_is_shrunk_as_far_as_the_matcher_needs(name, share, zoomed_out):
    """Keypoint matchers shrink a larger template only until it fits (their keypoints carry
    their own scale); the correlation matcher to half the image (its scale grid is narrow)."""
    tpl, img, _ = zoomed_out
    r = tmatch.load_matcher(name).match(tpl, img)
    fit = min(img.shape[0] / tpl.shape[0], img.shape[1] / tpl.shape[1])
    assert r.extra["template_scale"] == pytest.approx(share * fit, rel=1e-3)


def test_feature_ncc_answers_larger_template_absent_with_a_reason(zoomed_out):
    tpl, img, _ = zoomed_out
    m = tmatch.load_matcher("ncc")
    r = m.match(tpl, img)
    assert not r.found and "larger than the image" in r.extra["reason"]
    assert m.match_all(tpl, img) == []
    assert [x.found for x in m.match_many(tpl, [img, img])] == [False, False]


@pytest.mark.parametrize("name", list(ALL))
def test_smoke_no_matcher_raises_for_a_larger_template(name, zoomed_out):
    tpl, img, _ = zoomed_out
    m = tmatch.load_matcher(name, **ALL[name])
    assert m.match(tpl, img).mask.shape == img.shape[:2]
    assert len(m.match_many(tpl, [img, img[:200]])) == 2
    assert isinstance(m.match_all(tpl, img, max_instances=3), list)


# ------------------------------------------------------------------ flat templates
@pytest.mark.parametrize("name", list(ALL))
def test_feature_all_black_template_is_absent_with_a_reason(name, astronaut):
    img = astronaut.copy()
    img[100:200, 100:200] = 0
    r = tmatch.load_matcher(name, **ALL[name]).match(np.zeros((64, 64, 3), np.uint8), img)
    assert not r.found and "no texture" in r.extra["reason"]


# ------------------------------------------------------------------ working size
def _big_scene(astronaut, coffee, tpl_side: int):
    bg = cv2.resize(np.concatenate([coffee, coffee[:, ::-1]], axis=1), (3000, 1500))
    tpl = cv2.resize(astronaut[60:420, 120:420], (tpl_side, round(tpl_side * 1.2)))
    img, hm = place(tpl, bg, 2100, 800, 1.0, 5.0)
    return tpl, img, hm


@pytest.mark.parametrize("tpl_side, expect", [(500, "rescale"), (100, "tiles")])
def test_feature_sift_works_within_work_side_and_stays_precise(tpl_side, expect, astronaut, coffee,
                                                                monkeypatch):
    tpl, img, hm = _big_scene(astronaut, coffee, tpl_side)
    m = tmatch.load_matcher("sift", work_side=1024)
    assert m._plan(tpl, img) == expect
    seen = []
    detect = FeatureMatcher._detect

    def spy(self, rgb, region):
        seen.append(max(rgb.shape[:2]))
        return detect(self, rgb, region)

    monkeypatch.setattr(FeatureMatcher, "_detect", spy)
    r = m.match(tpl, img)
    assert r.found and max(seen) <= 1024
    assert corner_error(r, hm, tpl.shape[:2]) < 3.0
    assert r.mask.shape == img.shape[:2]


@pytest.mark.parametrize("name", ["ncc", "neural"])
def test_feature_large_image_matched_within_work_side(name, astronaut, coffee):
    tpl, img, hm = _big_scene(astronaut, coffee, 400)
    img, hm = place(tpl, img[:, :, :], 2100, 800, 1.0, 0.0)
    r = tmatch.load_matcher(name, work_side=1024, **ALL[name]).match(tpl, img)
    assert r.found and corner_error(r, hm, tpl.shape[:2]) < 6.0


# ---------------------------------------------------------- errors and batches
def test_exception_match_many_gives_an_error_result_for_a_bad_image(astronaut):
    m = tmatch.load_matcher("sift")
    tpl = astronaut[100:220, 150:260]
    bad = np.full((50, 50, 3), np.nan, np.float32)
    out = m.match_many(tpl, [astronaut, bad, "/nonexistent/x.png", astronaut])
    assert [r.found for r in out] == [True, False, False, True]
    assert "NaN" in out[1].error and "not found" in out[2].error and out[0].error is None
    back = Match.from_dict(out[1].to_dict())
    assert back.error == out[1].error and not back.found


def test_feature_match_each_equals_match_and_detects_the_image_once(astronaut, monkeypatch):
    m = tmatch.load_matcher("sift")
    tpls = [astronaut[100:220, 150:260], astronaut[300:420, 50:200], np.zeros((30, 30, 3), np.uint8)]
    alone = [m.match(t, astronaut) for t in tpls]
    prepared = [m.prepare(t) for t in tpls]
    calls = []
    detect = FeatureMatcher._detect
    monkeypatch.setattr(FeatureMatcher, "_detect", lambda self, rgb, region: calls.append(1) or detect(self, rgb, region))
    each = m.match_each(prepared, tpls, astronaut)
    assert len(calls) == 1
    assert [_key(a) for a in alone] == [_key(e) for e in each]
    assert [e.extra["template"] for e in each] == [0, 1, 2]


@pytest.mark.parametrize("name", ["ncc", "neural", "orb"])
def test_feature_match_each_agrees_with_match(name, astronaut):
    m = tmatch.load_matcher(name, **ALL[name])
    tpls = [astronaut[100:220, 150:260], astronaut[300:420, 50:200]]
    each = m.match_each([m.prepare(t) for t in tpls], tpls, astronaut)
    assert [_key(e) for e in each] == [_key(m.match(t, astronaut)) for t in tpls]


def test_feature_match_all_templates_nms_across_templates(astronaut):
    m = tmatch.load_matcher("ncc")
    a, b = astronaut[100:160, 150:230], astronaut[300:380, 50:120]
    out = m.match_all_templates([a, b, a.copy()], astronaut, max_instances=2)
    boxes = sorted((r.extra["template"], r.box) for r in out)
    assert len(out) == 2  # the copy of `a` is suppressed by NMS across templates
    assert {t for t, _ in boxes} <= {0, 1, 2} and (150, 100, 80, 60) in [b for _, b in boxes]
    assert (50, 300, 70, 80) in [b for _, b in boxes]
    assert all(out[i].score >= out[i + 1].score for i in range(len(out) - 1))


def test_feature_match_each_on_a_large_image_detects_its_working_copy_once(astronaut, coffee,
                                                                             monkeypatch):
    tpl, img, hm = _big_scene(astronaut, coffee, 500)
    m = tmatch.load_matcher("sift", work_side=1024)
    tpls = [tpl, tpl[:300, :300].copy()]
    prepared = [m.prepare(t) for t in tpls]
    sizes = []
    detect = FeatureMatcher._detect
    monkeypatch.setattr(FeatureMatcher, "_detect",
                        lambda self, rgb, region: sizes.append(rgb.shape[:2]) or detect(self, rgb, region))
    each = m.match_each(prepared, tpls, img)
    whole = [s for s in sizes if max(s) == 1024]
    assert len(whole) == 1  # the downscaled image once; the rest are windows and templates
    assert each[0].found and corner_error(each[0], hm, tpl.shape[:2]) < 3.0


@pytest.mark.parametrize("name", ["sift", "orb", "akaze"])
def test_feature_prepare_on_a_one_pixel_high_template_does_not_crash(name):
    """AKAZE aborts the whole process (heap corruption) on a picture one pixel high; the public
    ``prepare`` must never hand it one. Run in a child process: a crash there fails the test."""
    import subprocess
    import sys

    code = ("import numpy as np, tmatch; m = tmatch.load_matcher(%r); "
            "p = m.prepare(np.random.default_rng(0).integers(0, 255, (1, 40, 3), dtype=np.uint8)); "
            "print(len(p.points))" % name)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-300:]
    assert r.stdout.strip() == "0"
