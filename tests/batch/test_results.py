from __future__ import annotations

import json

import numpy as np
import pytest

from tmatch.batch import ResultsFile, Row, expand, merge_results, read_results, write_results
from tmatch.batch.results import identity, journal_path
from tmatch.errors import InputError
from tmatch.geometry import rect_polygon
from tmatch.match import Match


def _row(t: str, i: str, tid: int, iid: int, found: bool = True) -> Row:
    mask = np.zeros((20, 30), bool)
    if found:
        mask[2:7, 3:9] = True
        m = Match(True, 0.9, rect_polygon(3, 2, 6, 5), (3, 2, 6, 5), mask, method="sift", ms=1.5)
    else:
        m = Match.absent((20, 30), method="sift")
    return Row.of(t, i, tid, iid, m)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_rows_round_trip_through_every_table_format(tmp_path, suffix):
    rows = [_row("a.png", "x.png", 1, 1), _row("b.png", "x.png", 2, 1, found=False),
            Row.failed("a.png", "bad.png", 1, 2, "sift", "image: cannot read")]
    write_results(tmp_path / f"r{suffix}", rows)
    back = read_results(tmp_path / f"r{suffix}")
    assert back == rows
    assert back[0].match().mask.sum() == 30 and back[0].match().box == (3, 2, 6, 5)


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown suffix"):
        ResultsFile(tmp_path / "r.txt")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resume_keeps_stored_rows_and_drops_a_cut_line(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    f = ResultsFile(path)
    f.add([_row("a.png", "x.png", 1, 1), _row("b.png", "x.png", 2, 1)])
    with open(path, "a") as fh:  # a kill in the middle of a line
        fh.write('{"template": "a.png", "ima' if suffix == ".jsonl" else "a.png,y.png,1,2,sift,Tr")
    f.release()  # the killed process's lock goes with it
    g = ResultsFile(path)
    assert g.keys() == {(identity("a.png"), identity("x.png")), (identity("b.png"), identity("x.png"))}
    g.add([_row("a.png", "y.png", 1, 2)])
    g.close()
    assert [r.key for r in read_results(path)] == [("a.png", "x.png"), ("b.png", "x.png"), ("a.png", "y.png")]
    assert ResultsFile(path, resume=False).keys() == set()


def test_parquet_rows_wait_in_a_journal_until_close(tmp_path):
    path = tmp_path / "r.parquet"
    f = ResultsFile(path)
    f.add([_row("a.png", "x.png", 1, 1)])
    assert not path.exists() and journal_path(path).is_file()
    f.close()
    assert not journal_path(path).exists() and len(read_results(path)) == 1
    g = ResultsFile(path)  # resuming a finished parquet file keeps its rows (close let go of the lock)
    g.add([_row("a.png", "y.png", 1, 2)])
    g.close()
    assert [r.key for r in read_results(path)] == [("a.png", "x.png"), ("a.png", "y.png")]


def test_merge_orders_by_image_then_template_and_drops_duplicates(tmp_path):
    write_results(tmp_path / "s0.jsonl", [_row("b.png", "y.png", 2, 2), _row("a.png", "y.png", 1, 2)])
    write_results(tmp_path / "s1.csv", [_row("a.png", "x.png", 1, 1), _row("a.png", "y.png", 1, 2, found=False)])
    out, n = merge_results([tmp_path / "s0.jsonl", tmp_path / "s1.csv"], tmp_path / "all.jsonl")
    rows = read_results(out)
    assert n == 3 and [r.key for r in rows] == [("a.png", "x.png"), ("a.png", "y.png"), ("b.png", "y.png")]
    assert rows[1].found is False  # the later file wins
    with pytest.raises(InputError, match="also an input"):
        merge_results([tmp_path / "s0.jsonl"], tmp_path / "s0.jsonl")


def test_coco_file_lists_found_rows_with_template_and_image_ids(tmp_path):
    write_results(tmp_path / "r.json", [_row("a.png", "x.png", 1, 7), _row("b.png", "x.png", 2, 7, found=False),
                                        Row.failed("a.png", "bad.png", 1, 8, "sift", "unreadable")])
    entries = json.loads((tmp_path / "r.json").read_text())
    assert [(e["image_id"], e["category_id"], e["bbox"]) for e in entries] == [(7, 1, [3, 2, 6, 5])]


def test_expand_files_folders_and_globs_in_natural_order(tmp_path):
    for name in ("s10.png", "s2.png", "s1.jpg", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in expand([tmp_path])] == ["s1.jpg", "s2.png", "s10.png"]
    assert [p.name for p in expand([str(tmp_path / "s*.png")])] == ["s2.png", "s10.png"]
    assert [p.name for p in expand([tmp_path / "notes.txt", tmp_path / "s2.png", tmp_path])][:2] == \
        ["notes.txt", "s2.png"]
    with pytest.raises(InputError, match="no images match"):
        expand([str(tmp_path / "*.bmp")])
    with pytest.raises(InputError, match="not a file, a folder or a glob"):
        expand([tmp_path / "missing.png"])
