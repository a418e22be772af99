"""A small benchmark run on the embedded sample set, shared by the bench tests."""

from __future__ import annotations

import pytest

from tmatch.bench import finish_run, run_bench
from tmatch.bench.report import TIMING_COLUMNS

METHODS = ["sift", "ncc"]
PROTOCOLS = ["seed", "warp", "negatives"]
LIMIT = 4


def comparable(df):
    """A results table without the columns that change between runs (time, memory)."""
    return df.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """sift and ncc on the first items of the sample set under three protocols."""
    out = tmp_path_factory.mktemp("bench") / "sample"
    res = run_bench(out, METHODS, PROTOCOLS, limit=LIMIT)
    finish_run(res.run, gallery=3)
    return res
