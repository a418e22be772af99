"""One calibrated confidence across matchers (issue 23 item 9): the curves, their plumbing into
every answer, and what the shipped file covers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tmatch
from tmatch import calibration
from tmatch.calibration import Curve, fit_curve
from tmatch.match import Match


def test_the_fitted_curve_is_monotone_smoothed_and_follows_the_data():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 2000)
    right = rng.uniform(0, 1, 2000) < s ** 2  # P(right | s) = s^2
    c = fit_curve(s, right)
    assert all(np.diff(c.scores) > 0) and all(np.diff(c.p) >= 0)
    assert 0 < min(c.p) and max(c.p) < 1  # no certainty from finite data
    for x in (0.3, 0.6, 0.9):
        assert abs(c(x) - x ** 2) < 0.08
    down = fit_curve(s, ~right, increasing=False)  # P(absent is right) falls with the score
    assert all(np.diff(down.p) <= 0) and abs(down(0.5) - 0.75) < 0.08


def test_tied_scores_make_one_knot():
    c = fit_curve(np.r_[np.zeros(50), np.linspace(0.1, 1, 50)], np.r_[np.zeros(50), np.ones(50)])
    assert all(np.diff(c.scores) > 0)


def _fake_file(tmp_path, monkeypatch, table):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"matchers": table}))
    monkeypatch.setattr(calibration, "CALIBRATION_FILE", path)
    calibration.calibrations.cache_clear()
    return path


@pytest.fixture()
def restore_cache():
    yield
    calibration.calibrations.cache_clear()


def test_every_answer_carries_its_matchers_confidence(tmp_path, monkeypatch, restore_cache, astronaut):
    _fake_file(tmp_path, monkeypatch, {"ncc": {"found": {"scores": [0.5, 1.0], "p": [0.2, 0.9]},
                                               "absent": {"scores": [0.0, 0.5], "p": [0.99, 0.6]}}})
    ncc = tmatch.load_matcher("ncc")
    tpl = astronaut[100:220, 150:260]
    m = ncc.match(tpl, astronaut)
    assert m.found and m.confidence == pytest.approx(Curve((0.5, 1.0), (0.2, 0.9))(m.score), abs=1e-4)
    assert json.loads(m.to_json())["confidence"] == m.confidence
    assert Match.from_dict(m.to_dict()).confidence == m.confidence
    assert "confidence=" in m.summary()
    noise = np.random.default_rng(0).integers(0, 256, (60, 60, 3), dtype=np.uint8)  # nowhere in the photo
    absent = ncc.match(noise, astronaut)
    assert not absent.found and 0.6 <= absent.confidence <= 0.99
    for r in (ncc.match_all(tpl, astronaut), ncc.match_many(tpl, [astronaut]),
              [ncc.match_prepared(ncc.prepare(tpl), tpl, astronaut)],
              ncc.match_each([ncc.prepare(tpl)], [tpl], astronaut)):
        assert r and all(x.confidence is not None for x in r)
    assert tmatch.load_matcher("sift").match(tpl, astronaut).confidence is None  # no curve: None


def test_a_missing_or_broken_file_means_no_confidence_not_an_error(tmp_path, monkeypatch, restore_cache):
    path = tmp_path / "calibration.json"
    path.write_text("{not json")
    monkeypatch.setattr(calibration, "CALIBRATION_FILE", path)
    calibration.calibrations.cache_clear()
    assert calibration.confidence("ncc", True, 0.9) is None
    monkeypatch.setattr(calibration, "CALIBRATION_FILE", tmp_path / "none.json")
    calibration.calibrations.cache_clear()
    assert calibration.confidence("ncc", True, 0.9) is None


def test_a_combined_matcher_answers_with_its_own_curve(tmp_path, monkeypatch, restore_cache, astronaut):
    """hybrid hands on its locator's answer: the confidence must be hybrid's, not neural's."""
    _fake_file(tmp_path, monkeypatch, {
        "neural": {"found": {"scores": [0, 1], "p": [0.11, 0.11]}, "absent": {"scores": [0, 1], "p": [0.12, 0.12]}},
        "hybrid": {"found": {"scores": [0, 1], "p": [0.91, 0.91]}, "absent": {"scores": [0, 1], "p": [0.92, 0.92]}}})
    hybrid = tmatch.load_matcher("hybrid")
    noise = np.random.default_rng(0).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    absent = hybrid.match(noise, astronaut)
    assert absent.method == "hybrid" and not absent.found and absent.confidence == 0.92
    found = hybrid.match(astronaut[100:220, 150:260], astronaut)
    assert found.found and found.confidence == 0.91


def test_the_shipped_curves_cover_the_default_and_are_monotone():
    from tmatch.registry import DEFAULT_MATCHER

    data = json.loads(calibration.CALIBRATION_FILE.read_text())
    assert data["about"]["fitted_on"] and "IoU >= 0.5" in data["about"]["right"]
    table = data["matchers"]
    assert DEFAULT_MATCHER in table and {"neural", "sift", "ncc"} <= set(table)
    for name, c in table.items():
        found, absent = c["found"], c["absent"]
        assert all(np.diff(found["scores"]) > 0) and all(np.diff(found["p"]) >= 0), name
        assert all(np.diff(absent["scores"]) > 0) and all(np.diff(absent["p"]) <= 0), name
        assert all(0 < p < 1 for p in found["p"] + absent["p"]), name


def test_a_shipped_confidence_reaches_every_answer(astronaut, restore_cache):
    calibration.calibrations.cache_clear()
    m = tmatch.load_matcher("hybrid").match(astronaut[100:220, 150:260], astronaut)
    assert m.found and 0.5 < m.confidence < 1.0
