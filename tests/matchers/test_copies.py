"""Pixel copies found by correlation (tmatch.matchers.copies) and the aligned agreement and ECC
alignment of tmatch.geometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tmatch import geometry
from tmatch.matchers.copies import RATIOS, copy_ratios, find_copy


def _noise(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_an_exact_crop_is_found_at_ratio_one_with_correlation_one(astronaut):
    c = find_copy(astronaut[150:190, 200:260], astronaut)
    assert c.box == (200, 150, 60, 40) and c.ratio == 1.0 and c.ncc > 0.999 and c.margin > 0.1


@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.25, 1.5, 2.0])
def test_a_crop_resampled_by_a_display_ratio_is_found_at_that_ratio(astronaut, ratio):
    tpl = np.ascontiguousarray(astronaut[180:260, 180:300])  # 80 x 120
    img = cv2.resize(astronaut, None, fx=ratio, fy=ratio, interpolation=cv2.INTER_AREA if ratio < 1
                     else cv2.INTER_CUBIC)
    c = find_copy(tpl, img)
    assert c.ratio == pytest.approx(ratio) and c.ncc > 0.9
    assert geometry.box_iou(c.box, (180 * ratio, 180 * ratio, 120 * ratio, 80 * ratio)) > 0.85


def test_a_plain_crop_is_found_however_low_its_contrast():
    img = _noise(200, 300)
    img = (img.astype(np.float32) * 0.06 + 120).astype(np.uint8)  # grey std about 4
    c = find_copy(img[50:90, 100:150], img)
    assert c.box == (100, 50, 50, 40) and c.ncc > 0.99


def test_a_repeated_pattern_has_no_margin():
    tile = _noise(40, 40)
    img = np.tile(tile, (3, 4, 1))
    c = find_copy(tile, img)
    assert c.ncc > 0.99 and c.margin < 0.05


def test_flat_or_oversized_templates_have_no_copy(astronaut):
    assert find_copy(np.full((30, 30, 3), 90, np.uint8), astronaut) is None
    assert find_copy(astronaut, astronaut[:100, :100]) is None


def test_the_ratios_are_one_and_those_between_display_scales():
    assert 1.0 in RATIOS and 0.5 in RATIOS and 2.0 in RATIOS and 1.5 in RATIOS
    assert all(0.5 <= r <= 2.0 for r in RATIOS)


def test_aligned_ncc_is_high_where_the_template_is_and_low_elsewhere(astronaut):
    tpl = astronaut[100:180, 150:250]
    right = np.array([[1.0, 0, 150], [0, 1, 100], [0, 0, 1]])
    wrong = np.array([[1.0, 0, 300], [0, 1, 300], [0, 0, 1]])
    assert geometry.aligned_ncc(tpl, astronaut, right) > 0.99
    assert geometry.aligned_ncc(tpl, astronaut, wrong) < 0.5
    assert geometry.aligned_ncc(np.full((20, 20, 3), 7, np.uint8), astronaut, right) == 0.0


def test_ecc_align_corrects_a_rough_transform(astronaut):
    tpl = astronaut[100:200, 150:270]
    rough = np.array([[1.0, 0, 153], [0, 1, 97], [0, 0, 1]])
    hm, cc = geometry.ecc_align(rough, tpl, astronaut)
    assert cc > 0.95 and np.abs(geometry.project(hm, np.array([[0.0, 0.0]])) - [150, 100]).max() < 0.5
    none, _ = geometry.ecc_align(rough, np.full((100, 120, 3), 9, np.uint8), astronaut)
    assert none is None


def test_a_template_larger_than_the_image_is_searched_below_the_ratio_that_fits(astronaut):
    import cv2 as _cv2

    tpl = np.ascontiguousarray(astronaut[100:300, 100:300])  # 200 x 200
    img = _cv2.resize(astronaut[100:300, 100:300], (60, 60), interpolation=_cv2.INTER_AREA)  # 0.3x
    c = find_copy(tpl, img, copy_ratios(tpl.shape[:2], img.shape[:2]))
    assert c is not None and c.ratio == pytest.approx(0.3, rel=0.1) and c.ncc > 0.9


def test_a_flat_band_is_no_copy_of_anything(astronaut):
    """OpenCV's correlation is 1 on a constant window: a black band must not be a perfect copy."""
    img = astronaut.copy()
    img[300:420, 20:200] = 0
    tpl = np.ascontiguousarray(astronaut[100:140, 150:210])
    c = find_copy(tpl, img)
    assert c is not None and c.box[:2] == (150, 100) and c.ncc > 0.99
    alien = np.ascontiguousarray(np.rot90(astronaut[100:160, 150:210]))  # nowhere in the image
    far = find_copy(alien, img)
    assert far is None or far.ncc < 0.9
    assert far is None or not (300 <= far.box[1] < 420 and 20 <= far.box[0] < 200)
