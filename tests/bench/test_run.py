"""The benchmark run: records, stored masks, resuming, shards, workers, threads."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

import tmatch
from tmatch import geometry, rle
from tmatch.bench import (
    CaseKey,
    case_keys,
    check_compare,
    load_records,
    load_table,
    merge_runs,
    parse_shard,
    run_bench,
    write_tables,
    write_text_masks,
)
from tmatch.bench.run import reseed
from tmatch.bench.store import RunStore
from tmatch.data import make_pair, open_source
from tmatch.errors import InputError, TmatchError
from tmatch.registry import MATCHERS

from .conftest import LIMIT, METHODS, PROTOCOLS, comparable
from .helpers import FlakyNCC


# ------------------------------------------------------------------------------ case lists
def test_case_keys_are_index_major_and_shards_partition_them():
    full = case_keys(7, ["seed", "warp"], limit=5)
    assert [k.case for k in full[:3]] == ["seed-000000", "warp-000000", "seed-000001"]
    assert len(full) == 10
    parts = [case_keys(7, ["seed", "warp"], limit=5, shard=(i, 3)) for i in range(3)]
    assert sorted(k.case for p in parts for k in p) == sorted(k.case for k in full)
    assert all({k.protocol for k in p if k.index == p[0].index} == {"seed", "warp"} for p in parts)


@pytest.mark.parametrize("text", ["3", "2/2", "-1/4", "a/b", "1/0"])
def test_bad_shard_is_an_input_error(text):
    with pytest.raises(InputError, match="shard"):
        parse_shard(text)


def test_case_ids_round_trip():
    assert CaseKey.parse("homography+photometric-000012") == CaseKey(12, "homography+photometric")
    with pytest.raises(InputError):
        CaseKey.parse("warp12")


# ----------------------------------------------------------------------------- a real run
def test_sample_run_writes_records_masks_tables_and_report(sample_run):
    run = sample_run.run
    n = LIMIT * len(PROTOCOLS)
    assert sample_run.n_cases == n and sample_run.computed == n * len(METHODS)
    for m in METHODS:
        assert len(RunStore(run).read_records(m)) == n
    df = pd.read_csv(run / "results.csv")
    pq = pd.read_parquet(run / "results.parquet")
    assert len(df) == len(pq) == n * len(METHODS)
    for col in ("iou", "found", "score", "ms", "peak_rss_mb", "image_name", "ann_id", "label", "box_x",
                "protocol", "method", "device", "threads", "batch"):
        assert col in pq.columns
    assert pq["iou"].between(0, 1).all() and (pq["ms"] > 0).all() and (pq["peak_rss_mb"] > 0).all()
    assert set(pq["protocol"]) == set(PROTOCOLS)
    # the negatives have no template in the image; the others do
    assert (~pq.loc[pq["protocol"] == "negatives", "present"]).all()
    assert pq.loc[pq["protocol"] != "negatives", "present"].all()
    # the exact crops of the seed protocol are easy for NCC
    assert pq.loc[(pq["protocol"] == "seed") & (pq["method"] == "ncc"), "iou"].mean() > 0.9
    report = (run / "report.md").read_text()
    for word in ("count", "mean", "std", "25%", "50%", "75%", "max", "iou_sift", "ms_ncc",
                 "correct-absent", "median ms", "sift better", "ncc better", "both failed"):
        assert word in report
    assert (run / "plots" / "iou.png").stat().st_size > 1000
    assert (run / "plots" / "time.png").stat().st_size > 1000
    assert cv2.imread(str(run / "plots" / "iou.png")) is not None


def test_stored_masks_decode_to_the_masks_whose_iou_was_recorded(sample_run):
    src = open_source(None)
    recs = load_records(sample_run.run)
    for method, by_case in recs.items():
        for case, r in by_case.items():
            key = CaseKey.parse(case)
            pair = make_pair(src, key.index, protocol=key.protocol, seed=0)
            mask = rle.decode(r.mask)
            assert mask.shape == pair.image.shape[:2] == (r.image_h, r.image_w)
            assert geometry.iou(mask, pair.mask) == r.iou
            assert bool(mask.any()) == r.found
    # and they are exactly what the matcher predicts (its C-level RNGs reset as the run does)
    for case in ("seed-000001", "warp-000002"):
        key = CaseKey.parse(case)
        pair = make_pair(src, key.index, protocol=key.protocol, seed=0)
        reseed(0, case)
        m = tmatch.load_matcher("sift").match(pair.template, pair.image)
        assert np.array_equal(rle.decode(recs["sift"][case].mask), m.mask)


def test_text_masks_hold_the_same_masks(sample_run):
    paths = write_text_masks(sample_run.run)
    recs = load_records(sample_run.run)
    for p, m in zip(paths, METHODS):
        lines = p.read_text().splitlines()
        assert len(lines) == LIMIT * len(PROTOCOLS)
        for line in lines:
            case, text = line.split("\t")
            assert np.array_equal(rle.from_text(text), rle.decode(recs[m][case].mask))


# --------------------------------------------------------------------------------- resuming
@pytest.fixture()
def flaky(monkeypatch):
    monkeypatch.setitem(MATCHERS, "flaky", "tests.bench.helpers:FlakyNCC")
    monkeypatch.setattr(FlakyNCC, "calls", 0)
    monkeypatch.setattr(FlakyNCC, "fail_after", None)
    return FlakyNCC


def test_a_run_resumed_after_a_crash_equals_an_uninterrupted_one(tmp_path, flaky):
    args = dict(methods=["flaky", "ncc"], protocols=["seed", "negatives"], limit=3)
    ref = run_bench(tmp_path / "ref", **args)
    write_tables(ref.run)
    flaky.calls, flaky.fail_after = 0, 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_bench(tmp_path / "run", **args)
    assert len(RunStore(tmp_path / "run").read_records("flaky")) == 4
    assert not (tmp_path / "run" / "results.csv").exists()
    flaky.calls, flaky.fail_after = 0, None
    res = run_bench(tmp_path / "run", **args)
    write_tables(res.run)
    # the crash lost only the unfinished item (both its cases); finished ones were not recomputed
    assert flaky.calls == ref.n_cases - 4 and res.skipped == 2 * 4
    pd.testing.assert_frame_equal(comparable(load_table(res.run)), comparable(load_table(ref.run)))
    again = run_bench(tmp_path / "run", **args)
    assert again.computed == 0


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_a_killed_subprocess_resumes_to_the_same_results(tmp_path, sample_run):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "tmatch", "bench", "--methods", ",".join(METHODS), "--protocols",
           ",".join(PROTOCOLS), "--limit", str(LIMIT), "--out", str(out), "--gallery", "0"]
    # The progress bar on stderr is the event: each update follows stored records.
    proc = subprocess.Popen(cmd + ["--progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = out / "records" / "ncc.jsonl"
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while not (records.exists() and records.read_text().count("\n") >= 2):
            assert sel.select(timeout=60), "no progress from the bench within 60 s"
            assert os.read(proc.stderr.fileno(), 4096), "the bench ended before storing two records"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(RunStore(out).read_records("ncc"))
    assert 2 <= done < LIMIT * len(PROTOCOLS), "the kill should land mid-way"
    with open(records, "a") as f:
        f.write('{"case": "seed-0000')  # as if killed mid-write
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "already stored" in r.stdout
    pd.testing.assert_frame_equal(comparable(load_table(out)), comparable(load_table(sample_run.run)))


def test_two_shards_merged_equal_the_unsharded_run(tmp_path, sample_run):
    for i in range(2):
        res = run_bench(tmp_path / f"shard-{i}", METHODS, PROTOCOLS, limit=LIMIT, shard=(i, 2))
        assert res.n_cases == LIMIT // 2 * len(PROTOCOLS)
    merged = merge_runs([tmp_path / "shard-1", tmp_path / "shard-0"], tmp_path / "all")
    write_tables(merged)
    pd.testing.assert_frame_equal(comparable(pd.read_parquet(merged / "results.parquet")),
                                  comparable(load_table(sample_run.run)))
    with pytest.raises(InputError, match="already holds a run"):
        merge_runs([tmp_path / "shard-0"], tmp_path / "all")


def test_runs_of_other_cases_cannot_be_merged(tmp_path):
    run_bench(tmp_path / "a", ["ncc"], ["seed"], limit=2)
    run_bench(tmp_path / "b", ["ncc"], ["seed"], limit=2, seed=1)
    with pytest.raises(InputError, match="seed differ"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "c")


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_a_process_pool_gives_the_same_results(tmp_path, sample_run):
    res = run_bench(tmp_path / "pool", METHODS, PROTOCOLS, limit=LIMIT, workers=2)
    df = load_table(res.run)
    assert set(df["threads"]) == {1}  # one thread per worker unless --threads says otherwise
    pd.testing.assert_frame_equal(comparable(df).drop(columns="threads"),
                                  comparable(load_table(sample_run.run)).drop(columns="threads"))


def test_threads_are_set_during_the_run_and_restored(tmp_path):
    before = cv2.getNumThreads()
    res = run_bench(tmp_path / "t", ["ncc"], ["seed"], limit=2, threads=1)
    assert cv2.getNumThreads() == before
    assert res.methods[0].threads == 1 and set(load_table(res.run)["threads"]) == {1}


def test_a_matcher_input_error_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(MATCHERS, "picky", "tests.bench.helpers:BadInputNCC")
    res = run_bench(tmp_path / "p", ["picky"], ["seed"], limit=6)
    df = load_table(res.run)
    bad = df[df["error"] != ""]
    assert len(df) == 6 and len(bad) == 2
    assert bad["error"].str.contains("refuses").all() and (~bad["found"]).all() and (bad["iou"] == 0).all()


def test_a_folder_holding_another_run_is_refused_but_methods_can_be_added(tmp_path):
    run_bench(tmp_path / "r", ["ncc"], ["seed"], limit=2)
    with pytest.raises(TmatchError, match="different run.*limit"):
        run_bench(tmp_path / "r", ["ncc"], ["seed"], limit=3)
    res = run_bench(tmp_path / "r", ["sift"], ["seed"], limit=2)
    assert res.computed == 2 and res.skipped == 0
    assert set(load_table(res.run)["method"]) == {"ncc", "sift"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(methods=["sift", "nope"]), "unknown matcher"),
    (dict(methods=["sift"], protocols=["twist"]), "unknown protocol"),
    (dict(methods=["sift"], workers=0), "workers"),
])
def test_bad_arguments_raise_tmatch_errors(tmp_path, kwargs, match):
    with pytest.raises(TmatchError, match=match):
        run_bench(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_gpu_matchers_run_batched_over_cases_sharing_a_template(tmp_path, monkeypatch):
    from tests.bench.helpers import FakeGPUNCC

    monkeypatch.setitem(MATCHERS, "fakegpu", "tests.bench.helpers:FakeGPUNCC")
    monkeypatch.setattr(FakeGPUNCC, "batches", [])
    res = run_bench(tmp_path / "g", ["fakegpu", "ncc"], ["seed", "warp", "negatives"], limit=3,
                    batch=8)
    # per item: seed and warp share the template (one batch of 2), the negative has its own
    assert FakeGPUNCC.batches == [2, 1] * 3
    df = load_table(res.run)
    gpu, cpu = df[df["method"] == "fakegpu"], df[df["method"] == "ncc"]
    assert set(gpu["batch"]) == {8} and set(gpu["device"]) == {"cuda"} and set(cpu["batch"]) == {1}
    assert np.array_equal(gpu["iou"].to_numpy(), cpu["iou"].to_numpy())


def test_a_bad_compare_is_refused_before_running(tmp_path):
    with pytest.raises(InputError, match="--compare"):
        check_compare(tmp_path / "c", ["ncc", "sift"], ["ncc", "orb"])
    assert check_compare(tmp_path / "c", ["ncc", "sift"], ["SIFT", "ncc"]) == ["sift", "ncc"]
    assert not (tmp_path / "c" / "records").exists()
