"""Fuzzing the public API: random dtypes, shapes, sizes, NaN, blank and tiny images.

Whatever arrives, a matcher either answers with a well-formed :class:`Match` (a mask of the
image's size; a found polygon that is a real quadrilateral inside the image's reach) or raises
one :class:`~tmatch.errors.TmatchError` with a one-line message — never another exception.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tmatch
from tmatch import geometry
from tmatch.errors import TmatchError
from tmatch.match import Match

FAST = ("ncc", "sift", "orb", "akaze")
SLOW = {"neural": {"runtime": "torch"}, "hybrid": {"runtime": "torch"}, "neural-seg": {"runtime": "torch"}}

DTYPES = (np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_)


@st.composite
def arrays(draw, max_side: int = 96):
    """An image-like array: any dtype of DTYPES, shape (H, W), (H, W, 1|3|4) or a bad one,
    content blank, noise, a pattern, or with NaN/inf."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([None, 1, 3, 4, 2, 5]))
    shape = (h, w) if channels is None else (h, w, channels)
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["blank", "noise", "pattern", "nan", "huge"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if kind == "blank":
        a = np.full(shape, draw(st.sampled_from([0, 1, 255])), np.float64)
    elif kind == "pattern":
        yy, xx = np.mgrid[:h, :w]
        a = ((xx // 4 + yy // 4) % 2 * 200.0 + 20)
        if channels is not None:
            a = np.repeat(a[..., None], channels, axis=2)
    elif kind == "huge":
        a = rng.uniform(-1e6, 1e6, shape)
    else:
        a = rng.uniform(0, 255, shape)
    if kind == "nan" and np.issubdtype(np.dtype(dtype), np.floating):
        a.flat[rng.integers(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if dtype is np.bool_:
        return a > 127
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.nan_to_num(a), info.min, info.max).astype(dtype)
    return a.astype(dtype)


def _check(result: Match, image_hw: tuple[int, int] | None) -> None:
    assert isinstance(result, Match)
    if image_hw is not None:
        assert result.mask.shape == image_hw
    assert result.mask.dtype == bool
    assert np.isfinite(result.score)
    if result.found:
        assert result.polygon is not None and result.polygon.shape == (4, 2)
        assert geometry.degenerate(result.polygon, convex=result.homography is not None) is None
        assert result.box is not None and result.mask.any()
    else:
        assert result.polygon is None and not result.mask.any()
    Match.from_dict(result.to_dict())


def _calm(fn, *args):
    """``fn(*args)``, or ``None`` when it raised a one-line TmatchError."""
    try:
        return fn(*args)
    except TmatchError as e:
        assert "\n" not in str(e) and str(e)
        return None


def _shape_hw(a):
    return (a.shape[0], a.shape[1]) if a.ndim >= 2 else None


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                 derandomize=True)


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=60, **_SETTINGS)
@given(template=arrays(48), image=arrays(96))
def test_fuzz_match_answers_or_raises_one_line(name, template, image):
    m = tmatch.load_matcher(name)
    r = _calm(m.match, template, image)
    if r is not None:
        _check(r, _shape_hw(image))
    rs = _calm(m.match_all, template, image, 3)
    for x in rs or []:
        _check(x, _shape_hw(image))
        assert x.found


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=25, **_SETTINGS)
@given(template=arrays(40), images=st.lists(arrays(80), min_size=1, max_size=4))
def test_fuzz_match_many_one_result_per_image(name, template, images):
    m = tmatch.load_matcher(name)
    out = _calm(m.match_many, template, images)
    if out is None:  # the template itself is bad
        return
    assert len(out) == len(images)
    for r, im in zip(out, images):
        if r.error is None:
            _check(r, _shape_hw(im))
        else:
            assert not r.found and "\n" not in r.error


@pytest.mark.parametrize("name", list(SLOW))
@settings(max_examples=8, **_SETTINGS)
@given(template=arrays(40), image=arrays(80))
def test_fuzz_slow_matchers_answer_or_raise_one_line(name, template, image):
    m = _matcher(name)
    r = _calm(m.match, template, image)
    if r is not None:
        _check(r, _shape_hw(image))


_LOADED: dict[str, object] = {}


def _matcher(name):
    if name not in _LOADED:
        _LOADED[name] = tmatch.load_matcher(name, **SLOW[name])
    return _LOADED[name]


@settings(max_examples=30, **_SETTINGS)
@given(side=st.integers(4, 12), img_h=st.integers(1, 30), img_w=st.integers(1, 30))
def test_fuzz_tiny_images_and_templates(side, img_h, img_w):
    rng = np.random.default_rng(side * 1000 + img_h * 31 + img_w)
    tpl = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
    img = rng.integers(0, 255, (img_h, img_w, 3), dtype=np.uint8)
    for name in FAST:
        m = tmatch.load_matcher(name)
        _check(m.match(tpl, img), (img_h, img_w))
        each = m.match_each([m.prepare(tpl)], [tpl], img)
        _check(each[0], (img_h, img_w))
        for x in m.match_all_templates([tpl, tpl], img):
            _check(x, (img_h, img_w))
