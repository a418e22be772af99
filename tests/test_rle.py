from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tmatch import rle
from tmatch.errors import InputError

masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
    lambda hw: arrays(bool, hw, elements=st.booleans()))


@settings(max_examples=200, deadline=None)
@given(masks)
def test_coco_rle_round_trip(mask):
    enc = rle.encode(mask)
    assert enc["size"] == list(mask.shape) and isinstance(enc["counts"], str)
    assert np.array_equal(rle.decode(enc), mask)
    assert rle.area(enc) == int(mask.sum())


@settings(max_examples=200, deadline=None)
@given(masks)
def test_text_rle_round_trip(mask):
    assert np.array_equal(rle.from_text(rle.to_text(mask)), mask)


@pytest.mark.parametrize("fill", [False, True])
def test_empty_and_full_masks(fill):
    m = np.full((7, 5), fill)
    assert np.array_equal(rle.decode(rle.encode(m)), m)
    assert np.array_equal(rle.from_text(rle.to_text(m)), m)
    assert rle.to_text(m) == ("7,5:0 35" if fill else "7,5:")


def test_text_format_is_row_major_zero_based():
    m = np.zeros((3, 4), bool)
    m[0, 3] = m[1, 0] = True  # one run across the row boundary
    m[2, 2] = True
    assert rle.to_text(m) == "3,4:3 2 10 1"


def test_uncompressed_coco_counts_decode():
    m = rle.decode({"size": [2, 2], "counts": [1, 2, 1]})  # column-major: bg 1, fg 2, bg 1
    assert m.tolist() == [[False, True], [True, False]]


@pytest.mark.parametrize("bad", ["", "3,4", "3,4:1", "x,y:1 2", "2,2:3 5"])
def test_bad_text_rejected(bad):
    with pytest.raises(InputError):
        rle.from_text(bad)
