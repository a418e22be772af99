"""Output paths checked before any work, and hidden leftovers of killed processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tmatch.errors import InputError
from tmatch.outputs import Output, check_number, check_output, check_outputs, remove_stale


def test_file_outputs(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "d").mkdir()
    assert check_output(tmp_path / "new" / "deeper" / "a.png", "--out", "image").name == "a.png"
    with pytest.raises(InputError, match="is a folder; give a file name"):
        check_output(tmp_path / "d", "--out", "image")
    with pytest.raises(InputError, match="f.txt is a file, not a folder"):
        check_output(tmp_path / "f.txt" / "a.png", "--out", "image")
    with pytest.raises(InputError, match="unknown image suffix '.xyz'"):
        check_output(tmp_path / "a.xyz", "--out", "image")
    with pytest.raises(InputError, match="no image suffix"):
        check_output(tmp_path / "a", "--out", "image")
    check_output(tmp_path / "r.json", "--json", "json")


def test_folder_outputs(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    check_output(tmp_path / "d" / "e", "--out", "folder")
    check_output(tmp_path, "--out", "folder")
    with pytest.raises(InputError, match="is a file; give a folder"):
        check_output(tmp_path / "f.txt", "--out", "folder")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output(tmp_path / "f.txt" / "run", "--out", "folder")


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "alias.png")
    with pytest.raises(InputError, match="is the input TEMPLATE"):
        check_outputs({"--out": Output(tmp_path / "alias.png", "image")}, {"TEMPLATE": src})
    with pytest.raises(InputError, match="are the same path"):
        check_outputs({"--out": Output(tmp_path / "a.png", "image"),
                       "--json": Output(tmp_path / "." / "a.png", "json")})
    check_outputs({"--out": Output(None, "image")}, {"TEMPLATE": src})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_numbers_must_be_finite_and_in_bounds(value):
    with pytest.raises(InputError, match="--tolerance must be a finite number >= 0"):
        check_number(value, "--tolerance", lo=0)
    assert check_number(None, "--x") is None
    with pytest.raises(InputError, match=r"in \(0, 1\]"):
        check_number(0, "--x", lo=0, hi=1, open_lo=True)


def test_stale_staging_files_of_dead_processes_go(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    out = tmp_path / "export"
    stale_dir = tmp_path / f".export.{dead}.k2j3.tmp"
    stale_dir.mkdir()
    (stale_dir / "template.onnx").write_bytes(b"half")
    stale_file = tmp_path / f".export.{dead}.old"
    stale_file.write_bytes(b"x")
    mine = tmp_path / f".export.{os.getpid()}.tmp"
    mine.write_bytes(b"in progress")
    other = tmp_path / f".export2.{dead}.tmp"
    other.write_bytes(b"not ours")
    removed = remove_stale(out)
    assert sorted(p.name for p in removed) == sorted([stale_dir.name, stale_file.name])
    assert mine.exists() and other.exists() and not stale_dir.exists()
