from __future__ import annotations

import tmatch
from tests.matchers.base import MatcherContract


class TestSIFT(MatcherContract):
    name = "sift"
    corner_tolerance = 3.0
    placement = (0.8, 20.0)


def test_sift_defaults_are_the_original_pipeline():
    m = tmatch.load_matcher("sift")
    assert (m.ratio, m.min_matches, m.ransac_threshold, m.trees, m.checks) == (0.75, 4, 5.0, 5, 50)
    assert not m.check_geometry


def test_sift_options_override_defaults():
    m = tmatch.load_matcher("sift", ratio=0.6, ransac_threshold=3.0)
    assert m.ratio == 0.6 and m.ransac_threshold == 3.0


def test_sift_reproduces_independent_reference(astronaut, chelsea, coffee, rocket):
    """Same mean IoU as a plain re-implementation of the original pipeline (within 0.03)."""
    from benchmarks.sift_reference import compare

    ours, ref, n = compare([astronaut, chelsea, coffee, rocket], pairs_per_photo=3, seed=1)
    assert n == 12
    assert abs(ours - ref) <= 0.03
    assert ours > 0.5  # the cases are solvable, so the comparison means something
