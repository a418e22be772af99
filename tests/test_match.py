from __future__ import annotations

import json

import numpy as np

from tmatch import Match
from tmatch.geometry import mask_from_polygon, rect_polygon


def test_absent_match_has_empty_mask_and_no_geometry():
    m = Match.absent((30, 40), score=0.1, method="x")
    assert not m.found and m.mask.shape == (30, 40) and not m.mask.any()
    d = json.loads(m.to_json())
    assert d["polygon"] is None and d["box"] is None and d["mask"]["size"] == [30, 40]


def test_to_dict_from_dict_round_trip():
    poly = rect_polygon(3, 4, 10, 12)
    m = Match(True, 0.8, poly, (3, 4, 10, 12), mask_from_polygon(poly, (30, 40)), np.eye(3), 1.5,
              "ncc", {"scale": np.float32(1.0)})
    back = Match.from_dict(json.loads(m.to_json()))
    assert back.found and back.box == m.box and np.allclose(back.polygon, poly)
    assert np.array_equal(back.mask, m.mask) and np.allclose(back.homography, np.eye(3))
    assert back.extra == {"scale": 1.0}


def test_error_field_round_trips_and_is_absent_when_none():
    ok = Match.absent((3, 4), method="sift")
    assert "error" not in ok.to_dict() and Match.from_dict(ok.to_dict()).error is None
    bad = Match.failed("image contains NaN or infinite pixels", method="sift")
    d = bad.to_dict()
    assert d["error"] == bad.error and not d["found"]
    assert Match.from_dict(d).error == bad.error
    assert bad.summary() == "sift: error: image contains NaN or infinite pixels"
