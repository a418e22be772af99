from __future__ import annotations

import numpy as np
import pytest

from tmatch import geometry as g


def test_exact_crop_polygon_mask_box_agree():
    poly = g.rect_polygon(10, 20, 30, 40)
    m = g.mask_from_polygon(poly, (100, 100))
    assert m.sum() == 1200
    assert g.box_from_mask(m) == (10, 20, 30, 40) == g.box_from_polygon(poly)


def test_cv_homography_conversion_round_trip():
    rng = np.random.default_rng(0)
    hm = np.eye(3) + rng.normal(0, 0.01, (3, 3))
    assert np.allclose(g.to_cv_homography(g.from_cv_homography(hm)), hm)
    # a pure pixel shift by (3, 4) is the same in both conventions
    t = np.array([[1, 0, 3], [0, 1, 4], [0, 0, 1.0]])
    assert np.allclose(g.from_cv_homography(t), t)


def test_scaling_homography_convention():
    # scaling by 2 about the origin in our convention maps pixel edges, not centres
    s = np.diag([2.0, 2.0, 1.0])
    assert np.allclose(g.template_polygon(s, (5, 10))[2], [20, 10])


def test_polygon_from_mask_recovers_rotated_rectangle():
    hm = g.random_homography(np.random.default_rng(3), (60, 80), (300, 300), scale=(1, 1),
                             rotation=30, perspective=0)
    poly = g.template_polygon(hm, (60, 80))
    m = g.mask_from_polygon(poly, (300, 300))
    rec = g.polygon_from_mask(m)
    assert g.polygon_iou(rec, poly) > 0.95
    assert g.iou(g.mask_from_polygon(rec, (300, 300)), m) > 0.95


def test_order_corners_tl_tr_br_bl():
    pts = np.array([[10, 10], [0, 0], [0, 10], [10, 0]], float)
    assert g.order_corners(pts).tolist() == [[0, 0], [10, 0], [10, 10], [0, 10]]


def test_iou_edge_cases():
    a = np.zeros((5, 5), bool)
    assert g.iou(a, a) == 1.0
    b = a.copy(); b[0, 0] = True
    assert g.iou(a, b) == 0.0
    with pytest.raises(ValueError):
        g.iou(a, np.zeros((4, 4), bool))


def test_polygon_iou_matches_mask_iou():
    p = g.rect_polygon(0, 0, 100, 100)
    q = g.project(np.array([[np.cos(0.3), -np.sin(0.3), 30], [np.sin(0.3), np.cos(0.3), 10], [0, 0, 1]]), p)
    mp, mq = g.mask_from_polygon(p, (200, 200)), g.mask_from_polygon(q, (200, 200))
    assert abs(g.polygon_iou(p, q) - g.iou(mp, mq)) < 0.02


def test_nms_keeps_best_of_overlapping():
    polys = [g.rect_polygon(0, 0, 10, 10), g.rect_polygon(2, 0, 10, 10), g.rect_polygon(30, 30, 10, 10)]
    assert g.nms(polys, [0.5, 0.9, 0.1]) == [1, 2]


def test_plausible_homography_rejects_degenerate_and_mirrored():
    mirror = np.array([[-1, 0, 30], [0, 1, 0], [0, 0, 1.0]])  # convex, but orientation flips
    assert g.plausible_homography(np.eye(3), (10, 10), (50, 50))
    assert not g.plausible_homography(np.diag([0.001, 0.001, 1.0]), (10, 10), (50, 50))
    assert not g.plausible_homography(np.full((3, 3), np.nan), (10, 10), (50, 50))
    assert not g.plausible_homography(mirror, (10, 10), (50, 50))
    assert g.plausible_homography(np.array([[1, 0, 5], [0, 1, 5], [0, 0.05, 1]]), (10, 10), (50, 50))
    bow_tie = np.array([[1, 0, 0], [0, 1, 0], [0.0, -0.2, 1]])  # corner behind the camera
    assert not g.plausible_homography(bow_tie, (10, 10), (50, 50))


def test_random_homography_stays_inside_image():
    rng = np.random.default_rng(0)
    for _ in range(50):
        hm = g.random_homography(rng, (80, 100), (480, 640))
        poly = g.template_polygon(hm, (80, 100))
        assert (poly >= -1e-6).all() and (poly[:, 0] <= 640 + 1e-6).all() and (poly[:, 1] <= 480 + 1e-6).all()


def test_fast_convex_rasteriser_equals_scanline_fill():
    from skimage.draw import polygon as scanline

    rng = np.random.default_rng(0)
    for _ in range(100):
        hm = g.random_homography(rng, (int(rng.integers(20, 200)), int(rng.integers(20, 200))), (480, 640),
                                 rotation=45, perspective=0.002)
        poly = g.template_polygon(hm, (100, 120))
        ref = np.zeros((480, 640), bool)
        rr, cc = scanline(poly[:, 1] - 0.5, poly[:, 0] - 0.5, (480, 640))
        ref[rr, cc] = True
        assert np.array_equal(g.mask_from_polygon(poly, (480, 640)), ref)
    bow_tie = np.array([[0, 0], [40, 40], [40, 0], [0, 40]], float)  # not convex: scanline path
    assert g.mask_from_polygon(bow_tie, (60, 60)).sum() > 0
