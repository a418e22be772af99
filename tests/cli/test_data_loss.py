"""Outputs never destroy what the user did not ask to overwrite (issue 25, items 1-6): no output
lands on an input, devices, pipes and links are written as the user meant, a results file is
known by the files its rows name, belongs to one configuration and has one writer at a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import cv2
import pytest

from tmatch.batch import ResultsFile, read_results


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture()
def shots(tmp_path, astronaut, chelsea):
    _write(tmp_path / "tpl.png", astronaut[100:220, 150:260])
    a = _write(tmp_path / "shots" / "a.png", astronaut)
    _write(tmp_path / "shots" / "b.png", chelsea)
    return tmp_path / "tpl.png", tmp_path / "shots", a


def test_overlays_into_the_image_folder_are_refused_and_the_photo_kept(run, shots):
    tpl, folder, a = shots
    before = a.read_bytes()
    res = run("match", tpl, folder, "--overlays", folder, "-m", "ncc")
    assert res.exit_code == 2 and "the input IMAGES" in res.stderr and len(res.stderr.splitlines()) == 1
    assert a.read_bytes() == before


def test_overlays_into_a_globbed_folder_are_refused(run, shots):
    tpl, folder, a = shots
    res = run("match", tpl, str(folder / "*.png"), "--overlays", folder, "-m", "ncc")
    assert res.exit_code == 2 and "holds the input" in res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]


def test_data_show_into_its_own_source_folder_is_refused(run, shots):
    _, folder, a = shots
    before = a.read_bytes()
    res = run("data", "show", folder, "--out", folder / "a.png", "--count", "1")
    assert res.exit_code == 2 and "inside the input folder" in res.stderr
    assert a.read_bytes() == before


def test_json_through_a_symlink_writes_its_target_and_keeps_the_link(run, shots, tmp_path):
    tpl, folder, a = shots
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    res = run("match", tpl, a, "-m", "ncc", "--json", link)
    assert res.exit_code == 0, res.stderr
    assert link.is_symlink() and json.loads(target.read_text())["found"] is True


def test_json_into_a_named_pipe_is_written_through(run, shots, tmp_path):
    tpl, _, a = shots
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    res = run("match", tpl, a, "-m", "ncc", "--json", fifo)
    reader.join(10)
    assert res.exit_code == 0, res.stderr
    assert fifo.exists() and not fifo.is_file()  # still a pipe, not replaced by a regular file
    assert json.loads(got[0])["box"] == [150, 100, 110, 120]


def test_json_to_dev_null_keeps_the_device_node(run, shots):
    tpl, _, a = shots
    res = run("match", tpl, a, "-m", "ncc", "--json", "/dev/null")
    assert res.exit_code == 0, res.stderr
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_is_one_line_and_stays_a_device(run, shots):
    tpl, _, a = shots
    res = run("match", tpl, a, "-m", "ncc", "--json", "/dev/full")
    assert res.exit_code == 2 and "no space" in res.stderr.lower() and len(res.stderr.splitlines()) == 1
    assert not os.path.isfile("/dev/full")


def test_save_into_a_pipe_is_refused(run, shots, tmp_path):
    tpl, folder, _ = shots
    fifo = tmp_path / "r.jsonl"
    os.mkfifo(fifo)
    res = run("match", tpl, folder, "-m", "ncc", "--save", fifo)
    assert res.exit_code == 2 and "device or a pipe" in res.stderr


def test_resume_knows_a_row_however_its_paths_are_spelled(run, shots, tmp_path, monkeypatch):
    tpl, folder, _ = shots
    monkeypatch.chdir(tmp_path)
    save = tmp_path / "p.jsonl"
    assert run("match", "tpl.png", "shots", "-m", "ncc", "--save", save).exit_code == 0
    res = run("match", str(tpl.resolve()), str(folder.resolve()), "-m", "ncc", "--save", save)
    assert res.exit_code == 0 and "2 already stored" in res.stderr + res.output
    assert len(read_results(save)) == 2
    monkeypatch.chdir(folder)  # and from another folder, relative again
    res = run("match", "../tpl.png", ".", "-m", "ncc", "--save", save)
    assert "2 already stored" in res.stderr + res.output and len(read_results(save)) == 2


def test_resume_with_another_configuration_is_refused(run, shots, tmp_path):
    tpl, folder, _ = shots
    save = tmp_path / "p.jsonl"
    assert run("match", tpl, folder, "-m", "ncc", "--save", save).exit_code == 0
    for other in (["-m", "sift"], ["-m", "ncc", "--threshold", "0.9"]):
        res = run("match", tpl, folder, *other, "--save", save)
        assert res.exit_code == 2 and "--no-resume" in res.stderr, other
    assert {r.method for r in read_results(save)} == {"ncc"} and len(read_results(save)) == 2
    res = run("match", tpl, folder, "-m", "sift", "--save", save, "--no-resume")
    assert res.exit_code == 0 and {r.method for r in read_results(save)} == {"sift"}


def test_a_file_from_before_run_descriptions_is_judged_by_its_rows(shots, tmp_path):
    save = tmp_path / "old.jsonl"
    f = ResultsFile(save, config={"method": "ncc", "options": {}})
    from tmatch.batch import Row
    from tmatch.match import Match

    f.add([Row.of("t.png", "i.png", 1, 1, Match.absent((4, 4), method="ncc"))])
    f.close()
    (tmp_path / ".old.jsonl.run.json").unlink()
    from tmatch.errors import InputError

    with pytest.raises(InputError, match="holds rows of ncc"):
        ResultsFile(save, config={"method": "sift", "options": {}})
    assert len(ResultsFile(save, config={"method": "ncc", "options": {}}).done) == 1


def test_a_second_writer_of_the_same_results_file_is_refused(shots, tmp_path):
    tpl, folder, _ = shots
    save = tmp_path / "p.jsonl"
    held = ResultsFile(save, config={"method": "ncc", "options": {}})
    proc = subprocess.run([sys.executable, "-m", "tmatch", "match", str(tpl), str(folder), "-m", "ncc",
                           "--save", str(save)], capture_output=True, text=True, timeout=120)
    held.close()
    assert proc.returncode == 2 and "another tmatch run" in proc.stderr
    assert read_results(save) == []
