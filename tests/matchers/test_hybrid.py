from __future__ import annotations

import numpy as np

import tmatch
from tmatch import geometry
from tests.matchers.base import MatcherContract, corner_error, place


class TestHybridWithNCCLocator(MatcherContract):
    """The hybrid contract with a classical locator (the neural one is tested with its weights)."""

    name = "hybrid"
    options = {"locator": "ncc", "locator_options": {"scales": (0.7, 1.2), "steps": 11, "threshold": 0.4}}
    corner_tolerance = 3.0
    placement = (0.85, 5.0)


def test_refinement_improves_on_the_locator(coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170, 0.85, 8.0)
    loc = tmatch.load_matcher("ncc", scales=(0.7, 1.2), steps=11, threshold=0.3).match(tpl, scene)
    hyb = tmatch.load_matcher("hybrid", locator="ncc",
                              locator_options={"scales": (0.7, 1.2), "steps": 11, "threshold": 0.3}).match(tpl, scene)
    assert hyb.extra["refined"] == "region" and hyb.homography is not None
    assert corner_error(hyb, hm, tpl.shape[:2]) < corner_error(loc, hm, tpl.shape[:2])


def test_inconsistent_refinement_is_rejected(coffee, chelsea):
    # The locator points at the wrong place (a region without the template): refinement inside it
    # cannot produce a consistent homography, so the locator's answer stands, marked unrefined.
    tpl = coffee[60:260, 180:420]
    scene, _ = place(tpl, chelsea, 230, 170)
    m = tmatch.load_matcher("hybrid", locator="ncc", fallback=False)
    loc = tmatch.Match(True, 0.5, geometry.rect_polygon(0, 0, 60, 60), (0, 0, 60, 60),
                       geometry.mask_from_polygon(geometry.rect_polygon(0, 0, 60, 60), scene.shape[:2]))
    out = m._refine(loc, m._refiner.prepare(tpl), tpl, scene)
    assert out.extra["refined"] is False and out.box == (0, 0, 60, 60)


def test_bad_refiner_rejected():
    import pytest

    with pytest.raises(ValueError):
        tmatch.load_matcher("hybrid", locator="ncc", refiner="ncc")


def test_fallback_refines_on_the_whole_image_when_the_region_is_wrong(coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170)
    m = tmatch.load_matcher("hybrid", locator="ncc")
    wrong = geometry.rect_polygon(0, 0, 60, 60)
    loc = tmatch.Match(True, 0.5, wrong, (0, 0, 60, 60), geometry.mask_from_polygon(wrong, scene.shape[:2]))
    out = m._refine(loc, m._refiner.prepare(tpl), tpl, scene)
    assert out.extra["refined"] == "global" and corner_error(out, hm, tpl.shape[:2]) < 3
