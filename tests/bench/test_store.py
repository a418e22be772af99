"""Run-folder storage: JSON lines survive a kill, whole files are replaced atomically."""

from __future__ import annotations

import json

import pytest

from tmatch.bench.store import RunStore, append_lines, iter_lines, repair_lines, write_atomic
from tmatch.errors import DataError, TmatchError


def test_reader_ignores_a_torn_last_line_and_repair_cuts_it(tmp_path):
    p = tmp_path / "r.jsonl"
    append_lines(p, [{"case": "a", "v": 1}, {"case": "b", "v": 2}])
    with open(p, "a") as f:
        f.write('{"case": "c", "v"')  # killed mid-write
    assert [r["case"] for r in iter_lines(p)] == ["a", "b"]
    assert repair_lines(p) == len('{"case": "c", "v"')
    append_lines(p, [{"case": "c", "v": 3}])
    assert [r["case"] for r in iter_lines(p)] == ["a", "b", "c"]


def test_a_broken_line_in_the_middle_is_an_error(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"case": "a"}\nnot json\n{"case": "b"}\n')
    with pytest.raises(DataError, match="line 2"):
        list(iter_lines(p))


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    p = write_atomic(tmp_path / "sub" / "t.json", json.dumps({"x": 1}))
    write_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert [q.name for q in p.parent.iterdir()] == ["t.json"]


def test_open_repairs_records_and_later_lines_win(tmp_path):
    s = RunStore(tmp_path)
    with s:
        s.append("sift", [{"case": "seed-000000", "method": "sift", "iou": 0.1}])
        s.append("sift", [{"case": "seed-000000", "method": "sift", "iou": 0.9}])
    with open(s.records_path("sift"), "a") as f:
        f.write('{"case": "seed-0000')
    with s:
        assert s.read_records("sift")["seed-000000"]["iou"] == 0.9
        assert s.records_path("sift").read_text().endswith("}\n")
    assert s.methods_on_disk() == ["sift"]


def test_a_second_writer_is_refused(tmp_path):
    with RunStore(tmp_path):
        with pytest.raises(TmatchError, match="another process"):
            RunStore(tmp_path).open()


def test_a_folder_without_spec_is_not_a_run(tmp_path):
    with pytest.raises(DataError, match="not a benchmark run"):
        RunStore(tmp_path).require()
    with pytest.raises(DataError, match="not found"):
        RunStore(tmp_path / "nope").require()
