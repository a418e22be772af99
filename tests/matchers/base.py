"""Contract tests every matcher must pass; each matcher's test file subclasses
:class:`MatcherContract` and sets a few class attributes.

The central check places a real photo's crop into another real photo at a known homography and
compares the reported corners with the true ones.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tmatch import geometry
from tmatch.match import Match


def paste(template: np.ndarray, background: np.ndarray, hm: np.ndarray) -> np.ndarray:
    """Warp ``template`` by ``hm`` (our convention) onto a copy of ``background``."""
    H, W = background.shape[:2]
    warped = geometry.warp_image(template, hm, (H, W))
    ones = np.full(template.shape[:2], 255, np.uint8)
    # Inset by one pixel: the warp's edge pixels blend with black.
    cover = geometry.warp_image(ones, hm, (H, W)) > 254
    out = background.copy()
    out[cover] = warped[cover]
    return out


def place(template: np.ndarray, background: np.ndarray, x: float, y: float, scale: float = 1.0,
          angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Template scaled and rotated (degrees) about its centre, its centre put at (x, y)."""
    h, w = template.shape[:2]
    a = np.deg2rad(angle)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    hm = np.array([[1, 0, x], [0, 1, y], [0, 0, 1]]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) \
        @ np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    return paste(template, background, hm), hm


def corner_error(m: Match, hm: np.ndarray, template_hw: tuple[int, int]) -> float:
    truth = geometry.template_polygon(hm, template_hw)
    return float(np.abs(np.asarray(m.polygon) - truth).max())


class MatcherContract:
    """Subclass with ``name`` set; tune the thresholds a matcher is held to."""

    name: str = ""
    options: dict = {}
    #: largest tolerated corner error (px) on a transformed placement
    corner_tolerance: float = 4.0
    #: scale/angle of the transformed placement this matcher must handle
    placement: tuple[float, float] = (0.85, 12.0)
    exact_iou: float = 0.95
    multi_instance: bool = True
    #: when set, the placement is judged by mask IoU against the truth instead of corners
    #: (matchers that segment rather than fit a homography)
    placement_iou: float | None = None
    #: largest tolerated error (px) of an instance centre in match_all
    centre_tolerance: float = 6.0

    @pytest.fixture()
    def matcher(self):
        return tmatch.load_matcher(self.name, **self.options)

    # smoke + cardinality
    def test_smoke_exact_crop_found_with_consistent_fields(self, matcher, astronaut):
        x, y, w, h = 150, 100, 150, 120
        m = matcher.match(astronaut[y:y + h, x:x + w], astronaut)
        assert m.found
        assert m.mask.shape == astronaut.shape[:2] and m.mask.dtype == bool
        assert m.polygon.shape == (4, 2)
        assert len(m.box) == 4 and m.ms > 0 and m.method == self.name
        truth = geometry.mask_from_polygon(geometry.rect_polygon(x, y, w, h), astronaut.shape[:2])
        assert geometry.iou(m.mask, truth) >= self.exact_iou

    # feature: the known-homography placement
    def test_feature_corners_of_placed_crop(self, matcher, coffee, chelsea):
        tpl = coffee[60:260, 180:420]
        scale, angle = self.placement
        scene, hm = place(tpl, chelsea, 230, 170, scale, angle)
        m = matcher.match(tpl, scene)
        assert m.found
        if self.placement_iou is not None:
            truth = geometry.mask_from_polygon(geometry.template_polygon(hm, tpl.shape[:2]), scene.shape[:2])
            assert geometry.iou(m.mask, truth) >= self.placement_iou
        else:
            assert corner_error(m, hm, tpl.shape[:2]) <= self.corner_tolerance

    # feature: absent template
    def test_feature_uniform_image_gives_not_found(self, matcher, coffee):
        blank = np.full((240, 320, 3), 127, np.uint8)
        m = matcher.match(coffee[100:200, 100:220], blank)
        assert not m.found
        assert not m.mask.any() and m.mask.shape == (240, 320)
        assert m.polygon is None and m.box is None

    def test_match_many_equals_match(self, matcher, astronaut, rocket):
        tpl = astronaut[30:180, 170:300]
        scene = place(tpl, rocket, 300, 250)[0]
        many = matcher.match_many(tpl, [astronaut, scene])
        for one, im in zip(many, [astronaut, scene]):
            single = matcher.match(tpl, im)
            assert one.found == single.found
            assert geometry.iou(one.mask, single.mask) > 0.97

    def test_to_dict_round_trip(self, matcher, astronaut):
        m = matcher.match(astronaut[100:220, 150:300], astronaut)
        back = Match.from_dict(m.to_dict())
        assert back.found == m.found and np.array_equal(back.mask, m.mask)
        assert back.box == m.box

    def test_match_all_finds_every_pasted_copy(self, matcher, chelsea, astronaut):
        if not self.multi_instance:
            pytest.skip("single-instance matcher")
        tpl = cv2.resize(astronaut[30:230, 150:350], (140, 140), interpolation=cv2.INTER_AREA)
        scene = cv2.resize(chelsea, (640, 480), interpolation=cv2.INTER_AREA)
        centres = [(110, 100), (480, 120), (300, 380)]
        for cx, cy in centres:
            scene = place(tpl, scene, cx, cy)[0]
        found = matcher.match_all(tpl, scene, max_instances=6)
        assert len(found) == 3
        got = sorted((float(np.mean(m.polygon[:, 0])), float(np.mean(m.polygon[:, 1]))) for m in found)
        for (gx, gy), (tx, ty) in zip(got, sorted(centres)):
            assert abs(gx - tx) < self.centre_tolerance and abs(gy - ty) < self.centre_tolerance


def option_tables():
    """``(name, option table)`` of every registered matcher importable here (a matcher whose
    extra is not installed is left out)."""
    from tmatch.registry import MATCHERS, matcher_class

    for name in MATCHERS:
        try:
            yield name, matcher_class(name).option_table()
        except tmatch.TmatchError:
            continue
