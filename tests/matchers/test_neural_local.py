"""neural-local: the contract, plus the invariances it is built for (any angle, 0.4x and 2.5x,
strong perspective, a template larger than the image), absence and determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tests.matchers.base import MatcherContract, corner_error, paste, place
from tmatch import geometry
from tmatch.errors import CheckpointError, InputError


class TestNeuralLocal(MatcherContract):
    name = "neural-local"
    multi_instance = False
    corner_tolerance = 4.0
    placement = (0.85, 120.0)


@pytest.fixture(scope="module")
def matcher():
    return tmatch.load_matcher("neural-local", threads=1)


@pytest.fixture(scope="module")
def big_scene(rocket):
    return cv2.resize(rocket, (1024, 720), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("scale, angle, tolerance", [(1.0, 120.0, 3.0), (0.4, 200.0, 6.0), (2.5, -75.0, 8.0)])
def test_feature_rotation_and_scale_found_with_corner_bound(matcher, coffee, big_scene, scale, angle, tolerance):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, big_scene, 512, 360, scale, angle)
    m = matcher.match(tpl, scene)
    assert m.found
    assert corner_error(m, hm, tpl.shape[:2]) <= tolerance


def test_feature_strong_perspective_found_with_corner_bound(matcher, coffee, big_scene):
    tpl = coffee[60:260, 180:420]
    h, w = tpl.shape[:2]
    # the far side shrunk to 60%: about a 40 degree turn of the viewpoint
    src = geometry.rect_polygon(0, 0, w, h).astype(np.float32)
    dst = np.float32([[400, 250], [640, 300], [640, 420], [400, 470]])
    hm = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    scene = paste(tpl, big_scene, hm)
    m = matcher.match(tpl, scene)
    assert m.found
    assert corner_error(m, hm, tpl.shape[:2]) <= 5.0


def test_feature_template_larger_than_image_is_found(matcher, astronaut):
    """A 2x capture searched in the 1x photo (the template is larger than the whole image)."""
    image = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)  # 0.625x
    tpl = astronaut[40:440, 60:460]  # 400x400, larger than the image
    m = matcher.match(tpl, image)
    assert m.found
    truth = geometry.rect_polygon(60 * 0.625, 40 * 0.625, 400 * 0.625, 400 * 0.625)
    assert geometry.polygon_iou(m.polygon, truth) >= 0.9


def test_feature_template_from_another_photo_is_absent(matcher, coffee, rocket, chelsea):
    for tpl in (coffee[60:260, 180:420], rocket[100:260, 200:380]):
        m = matcher.match(tpl, chelsea)
        assert not m.found and m.polygon is None and not m.mask.any()


def test_feature_same_input_gives_the_same_answer(matcher, coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene = place(tpl, chelsea, 230, 170, 0.7, 150.0)[0]
    a, b = matcher.match(tpl, scene), matcher.match(tpl, scene)
    assert a.found and np.array_equal(a.polygon, b.polygon) and a.score == b.score


def test_exception_missing_weights_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        tmatch.load_matcher("neural-local", weights=str(tmp_path / "none.onnx"))


def test_exception_tiny_template_is_refused(matcher, coffee):
    with pytest.raises(InputError, match="too small"):
        matcher.match(coffee[:3, :3], coffee)


def test_options_are_declared_and_checked():
    with pytest.raises(InputError, match="ratio"):
        tmatch.load_matcher("neural-local", ratio=1.5)
    assert "neural-local" in tmatch.list_matchers()


def test_feature_tiny_search_image_is_enlarged_before_detection(matcher, chelsea):
    """A 90x60 thumbnail searched with a 250x200 crop of the full photo: too few pixels for
    keypoints at native size (IoU about 0.4 without the enlargement)."""
    image = cv2.resize(chelsea, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    m = matcher.match(chelsea[50:250, 100:350], image)
    assert m.found
    assert geometry.polygon_iou(m.polygon, geometry.rect_polygon(20, 10, 50, 40)) >= 0.9


def test_feature_few_matches_are_fitted_with_a_similarity():
    """Six matches of a 2× capture (one wrong): the homography's eight free parameters would bend
    to the noise; the similarity tried below eight inliers puts the corners within a pixel."""
    from tmatch.matchers.neural_local.verify import fit

    rng = np.random.default_rng(0)
    src = rng.uniform(0, 90, (6, 2))
    want = np.array([[2.0, 0.0, 30.0], [0.0, 2.0, 40.0], [0.0, 0.0, 1.0]])
    dst = src * 2.0 + [30.0, 40.0] + rng.normal(0, 0.8, (6, 2))
    dst[5] = [400.0, 10.0]  # a wrong match
    v = fit(src, dst, np.full(6, 0.5), (90, 90), (400, 500), threshold=4.0)
    assert v.inliers == 5 and v.plausible
    for seed in (1, 7, 12345):  # whatever OpenCV's random state, the same answer
        cv2.setRNGSeed(seed)
        cv2.randu(np.zeros((4, 4)), 0, 1)
        w = fit(src, dst, np.full(6, 0.5), (90, 90), (400, 500), threshold=4.0)
        assert np.array_equal(w.homography, v.homography) and w.inliers == v.inliers
    corners = geometry.template_polygon(v.homography, (90, 90))
    truth = geometry.template_polygon(geometry.from_cv_homography(want), (90, 90))
    assert np.abs(corners - truth).max() < 2.0


def test_feature_many_matches_keep_the_homography():
    """Under a real perspective with many matches the homography stands (no similarity)."""
    from tmatch.matchers.neural_local.verify import fit

    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, (40, 2)).astype(np.float32)
    hm = cv2.getPerspectiveTransform(np.float32([[0, 0], [200, 0], [200, 200], [0, 200]]),
                                     np.float32([[100, 50], [300, 90], [300, 230], [100, 290]]))
    dst = cv2.perspectiveTransform(src[None], hm)[0]
    v = fit(src, dst, np.full(40, 0.5), (200, 200), (400, 500))
    assert v.inliers == 40
    fitted = cv2.perspectiveTransform(src[None], geometry.to_cv_homography(v.homography))[0]
    assert np.abs(fitted - dst).max() < 0.05


def test_keypoint_budget_follows_the_working_area():
    """``max_points`` per 640×480 pixels of the working size: a large screenshot keeps as many
    keypoints per pixel as a photo, a small image no fewer than ``max_points``, and an image
    larger than ``max_side`` counts at its working size."""
    m = tmatch.load_matcher("neural-local", max_points=1000, max_side=1280)
    assert m.point_budget((240, 320)) == 1000
    assert m.point_budget((480, 640)) == 1000
    assert m.point_budget((960, 1280)) == 4000
    assert m.point_budget((1920, 2560)) == 4000


def test_shipped_graph_matches_the_shipped_weights():
    """The shipped ONNX graph is the one exported from the shipped weights (digest), and it gives
    the numpy runner's descriptors: a stale graph would silently change every match."""
    from tmatch.matchers.neural_local.describe import Describer
    from tmatch.matchers.neural_local.matcher import SHIPPED

    m = tmatch.load_matcher("neural-local")
    assert m.describer.runtime == "onnxruntime"
    patches = np.random.default_rng(3).integers(0, 256, (11, 32, 32)).astype(np.uint8)
    assert np.abs(m.describer(patches) - Describer(SHIPPED)(patches)).max() < 1e-4
