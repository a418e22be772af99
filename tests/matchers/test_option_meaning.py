"""One meaning per option name across matchers, and the Python API accepts what the CLI does
(issue 23 item 7): ``rotations="full"`` / ``"none"`` and ``"0.5,1,2"`` strings everywhere,
``scales`` a list of the scales tried for every matcher (ncc's ``steps`` spreads a range)."""

from __future__ import annotations

import numpy as np
import pytest

import tmatch
from tests.matchers.base import option_tables
from tmatch.errors import InputError
from tmatch.matchers.options import NAMED_VALUES
from tmatch.registry import matcher_class


@pytest.mark.parametrize("value", ["full", "FULL ", "none"])
def test_named_rotations_work_from_python_for_every_matcher_that_rotates(value):
    owners = [n for n, t in option_tables() if "rotations" in t]
    assert "neural" in owners  # the table walk sees the matchers
    for name in owners:
        parsed = matcher_class(name).option_table()["rotations"].parse(value)
        assert parsed == NAMED_VALUES["rotations"][value.strip().lower()], name
    m = tmatch.load_matcher("neural", rotations=value)
    assert m.rotations == NAMED_VALUES["rotations"][value.strip().lower()]


def test_a_list_option_takes_the_cli_spelling_from_python():
    assert tmatch.load_matcher("ncc", scales="0.5, 1,2").scales == (0.5, 1.0, 2.0)
    assert tmatch.load_matcher("neural", rotations="-30,0,30").rotations == (-30.0, 0.0, 30.0)
    with pytest.raises(InputError, match="'full'"):  # the error names the accepted words
        tmatch.load_matcher("neural", rotations="sideways")


def test_scales_means_the_scales_tried_for_every_matcher_that_has_it():
    helps = {n: t["scales"].help for n, t in option_tables() if "scales" in t}
    assert "ncc" in helps and "neural" in helps
    assert all("scales tried" in h or "scales searched" in h for h in helps.values()), helps


def test_ncc_tries_exactly_the_listed_scales_and_steps_spreads_their_range():
    assert tmatch.load_matcher("ncc")._scale_list() == [1.0]
    assert tmatch.load_matcher("ncc", scales=(2.0, 0.5, 1.0))._scale_list() == [0.5, 1.0, 2.0]
    spread = tmatch.load_matcher("ncc", scales=(0.5, 2.0), steps=5)._scale_list()
    assert np.allclose(spread, [0.5, 0.7071, 1.0, 1.4142, 2.0], atol=1e-3)


def test_ncc_finds_a_half_size_copy_at_a_listed_scale_only():
    rng = np.random.default_rng(3)
    import cv2

    image = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
    template = cv2.resize(image[60:140, 100:220], (240, 160), interpolation=cv2.INTER_CUBIC)  # 2x
    found = tmatch.load_matcher("ncc", scales=(0.5, 1.0)).match(template, image)
    assert found.found and abs(found.box[0] - 100) <= 2 and abs(found.box[1] - 60) <= 2
    assert not tmatch.load_matcher("ncc", scales=(1.0,)).match(template, image).found


def test_the_service_accepts_named_rotations():
    pytest.importorskip("fastapi")
    from tmatch.serve.options import parse_options

    opts = parse_options("neural", '{"rotations": "full"}')
    assert tmatch.load_matcher("neural", **opts).rotations == NAMED_VALUES["rotations"]["full"]
