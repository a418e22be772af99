"""Reports, galleries and case views are drawn from stored records, never by running matchers."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

import tmatch.registry
from tmatch.bench import compare_methods, describe_table, load_table, show_case, write_report
from tmatch.bench.report import protocol_table
from tmatch.errors import InputError

from .conftest import LIMIT, METHODS


@pytest.fixture()
def no_matching(monkeypatch):
    """Any attempt to build a matcher fails the test."""
    def refuse(*a, **k):
        raise AssertionError("a matcher was built while reporting")
    monkeypatch.setattr(tmatch.registry, "load_matcher", refuse)
    monkeypatch.setattr(tmatch.registry, "matcher_class", refuse)


def _table():
    rows = []
    for i, (a, b) in enumerate([(1.0, 0.2), (0.0, 0.0), (0.3, 0.9), (0.5, 0.5), (0.9, 0.0)]):
        for m, v in (("A", a), ("B", b)):
            rows.append(dict(case=f"seed-{i:06d}", method=m, iou=v, ms=10.0 + i, present=True,
                             found=v > 0, protocol="seed"))
    return pd.DataFrame(rows)


def test_compare_splits_cases_into_better_worse_and_both_failed():
    c = compare_methods(_table(), "A", "B")
    assert c.a_better == ["seed-000004", "seed-000000"]  # largest difference first
    assert c.b_better == ["seed-000002"]
    assert c.both_failed == ["seed-000001"] and c.ties == 1
    with pytest.raises(InputError, match="no records"):
        compare_methods(_table(), "A", "C")


def test_describe_table_has_the_original_layout():
    d = describe_table(_table(), ["A", "B"])
    assert list(d.index) == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert list(d.columns) == ["iou_A", "iou_B", "ms_A", "ms_B"]
    assert d.loc["mean", "iou_A"] == pytest.approx(0.54) and d.loc["count", "ms_B"] == 5


def test_protocol_table_rates():
    df = _table()
    df.loc[df["case"] == "seed-000001", ["present", "protocol"]] = (False, "negatives")
    rows = {(r.protocol, r.method): r for r in protocol_table(df, ["A", "B"])}
    assert rows["seed", "A"].success == pytest.approx(0.5)  # 1.0 and 0.9 of 1.0, 0.3, 0.5, 0.9
    assert rows["negatives", "A"].correct_absent == 1.0 and np.isnan(rows["negatives", "A"].success)


def test_report_is_redrawn_from_stored_records_only(sample_run, tmp_path, no_matching):
    run = tmp_path / "copy"
    shutil.copytree(sample_run.run, run)
    for p in [run / "report.md", *(run / "plots").iterdir()]:
        p.unlink()
    shutil.rmtree(run / "galleries", ignore_errors=True)
    text = write_report(run, compare=["ncc", "sift"], gallery=2)
    assert (run / "report.md").read_text() == text
    assert "## ncc vs sift" in text and (run / "plots" / "iou.png").exists()
    c = compare_methods(load_table(run), "ncc", "sift")
    for folder, cases in (("ncc_better", c.a_better), ("sift_better", c.b_better), ("both_failed", c.both_failed)):
        assert f": {len(cases)}" in text
        pngs = sorted((run / "galleries" / folder).glob("*.png")) if cases else []
        assert len(pngs) == min(2, len(cases))
    with pytest.raises(InputError, match="not in this run"):
        write_report(run, compare=["ncc", "orb"])


def test_show_renders_a_case_from_stored_masks(sample_run, tmp_path, no_matching):
    shown = show_case(sample_run.run, "warp-000001", out=tmp_path / "case.png")
    assert [r.method for r in shown.records] == METHODS and shown.consistent
    img = cv2.imread(str(shown.path))
    assert img is not None and img.shape[0] == 240 and img.shape[1] > 4 * 200
    with pytest.raises(InputError, match="no records"):
        show_case(sample_run.run, f"seed-{LIMIT + 5:06d}")
