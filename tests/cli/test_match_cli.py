from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tmatch import rle


def test_match_writes_overlay_and_json(run, photo, tmp_path):
    out, js = tmp_path / "ov.png", tmp_path / "r.json"
    res = run("match", photo, photo, "--roi", "150,100,150,120", "--method", "sift", "--out", out, "--json", js)
    assert res.exit_code == 0, res.output
    assert "found=True" in res.output and "box=150,100,150,120" in res.output
    d = json.loads(js.read_text())
    assert d["found"] and d["box"] == [150, 100, 150, 120]
    assert rle.decode(d["mask"]).sum() == 150 * 120
    ov = cv2.imread(str(out))
    assert ov is not None and ov.shape[:2] == (512, 512)


def test_match_template_file(run, photo, tmp_path, astronaut):
    tpl = tmp_path / "t.jpg"
    cv2.imwrite(str(tpl), cv2.cvtColor(astronaut[100:220, 150:300], cv2.COLOR_RGB2BGR))
    res = run("match", tpl, photo, "--method", "ncc")
    assert res.exit_code == 0 and "found=True" in res.output


def test_match_all_lists_instances(run, tmp_path, chelsea, astronaut):
    from tests.matchers.base import place

    tpl = cv2.resize(astronaut[30:230, 150:350], (140, 140), interpolation=cv2.INTER_AREA)
    scene = cv2.resize(chelsea, (640, 480))
    for c in [(110, 100), (480, 120), (300, 380)]:
        scene = place(tpl, scene, *c)[0]
    tp, sp, js = tmp_path / "t.png", tmp_path / "s.png", tmp_path / "all.json"
    cv2.imwrite(str(tp), cv2.cvtColor(tpl, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(sp), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    res = run("match", tp, sp, "--method", "ncc", "--all", "--json", js)
    assert res.exit_code == 0 and "3 instance(s)" in res.output
    assert len(json.loads(js.read_text())) == 3


def test_methods_lists_every_registered_name_once_in_its_first_column(run):
    from tmatch.registry import DEFAULT_MATCHER, MATCHERS

    res = run("methods")
    assert res.exit_code == 0
    rows = [line for line in res.output.splitlines() if line and not line.startswith(("default:", "options"))]
    names = [line.split()[0] for line in rows]  # a whole name, not a substring ("neural" of "neural-seg")
    assert names == list(MATCHERS)
    starts = {line.index(line.split()[1]) for line in rows}
    assert len(starts) == 1  # descriptions start in one column, whatever the longest name
    assert [n for n, line in zip(names, rows) if line.endswith("(default)")] == [DEFAULT_MATCHER]


@pytest.mark.parametrize("case, message", [
    ("missing", "not found"), ("corrupt", "not an image, or corrupt"), ("empty", "empty"),
    ("zero_roi", "roi"), ("bad_roi", "roi"), ("unknown_method", "unknown matcher 'magic'"),
    ("nan", "nan")])
def test_bad_input_exit_2_one_line(case, message, run, photo, tmp_path, astronaut):
    args = ["match", photo, photo]
    if case == "missing":
        args = ["match", tmp_path / "nope.png", photo]
    elif case == "corrupt":
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"\xff\xd8\xff garbage")
        args = ["match", bad, photo]
    elif case == "empty":
        e = tmp_path / "e.png"
        e.write_bytes(b"")
        args = ["match", e, photo]
    elif case == "zero_roi":
        args += ["--roi", "10,10,0,5"]
    elif case == "bad_roi":
        args += ["--roi", "10,10"]
    elif case == "unknown_method":
        args += ["--method", "magic"]
    elif case == "nan":
        f = tmp_path / "nan.tiff"
        a = np.zeros((40, 40), np.float32)
        a[3, 3] = np.nan
        cv2.imwrite(str(f), a)
        args = ["match", f, photo]
    res = run(*args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0].lower(), lines[0]


def test_template_larger_than_image_is_answered_not_refused(run, photo, tmp_path, astronaut):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), astronaut[:50, :50])
    res = run("match", photo, small)
    assert res.exit_code == 0, res.output
    assert "found=" in res.output


def test_script_prints_one_line_error_without_traceback(tmp_path, photo):
    p = subprocess.run([sys.executable, "-m", "tmatch", "match", str(tmp_path / "nope.png"), str(photo)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not found" in lines[0]
    assert "Traceback" not in p.stderr


# --- options as typed flags, the default matcher, --json -, --version ---------------------

def _capture_load(monkeypatch):
    """Record the (name, options) `tmatch match` loads its matcher with, and run ncc instead."""
    import tmatch.registry

    seen = []
    real = tmatch.registry.load_matcher
    monkeypatch.setattr(tmatch.registry, "load_matcher",
                        lambda name="hybrid", **opts: seen.append((name, opts)) or real("ncc"))
    return seen


def test_matcher_flags_reach_the_matcher_typed(run, photo, monkeypatch):
    seen = _capture_load(monkeypatch)
    res = run("match", photo, photo, "-m", "neural", "--rotations", "full", "--threads", "2", "--device", "cpu",
              "--scales", "0.5, 1,2", "--no-refine")
    assert res.exit_code == 0, res.stderr
    name, opts = seen[0]
    assert name == "neural" and opts["threads"] == 2 and opts["device"] == "cpu" and opts["refine"] is False
    assert opts["scales"] == (0.5, 1.0, 2.0) and len(opts["rotations"]) == 18 and 0.0 in opts["rotations"]


def test_flag_of_another_matcher_is_a_one_line_error(run, photo):
    res = run("match", photo, photo, "-m", "sift", "--rotations", "full")
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--rotations does not apply to matcher 'sift'" in res.stderr and "neural" in res.stderr
    res = run("match", photo, photo, "-m", "ncc", "--threshold", "2")
    assert res.exit_code == 2 and "threshold must be in [" in res.stderr


def test_default_matcher_everywhere(run, photo, monkeypatch):
    import tmatch
    from tmatch.registry import DEFAULT_MATCHER

    assert type(tmatch.load_matcher()).name == DEFAULT_MATCHER == "hybrid"
    seen = _capture_load(monkeypatch)
    assert run("match", photo, photo).exit_code == 0 and seen[0][0] == DEFAULT_MATCHER
    res = run("methods")
    assert f"default: {DEFAULT_MATCHER}" in res.output and "README" in res.output  # where it was measured
    import inspect

    from tmatch.cli.bench import bench_cmd
    from tmatch.cli.video import video_cmd

    assert inspect.signature(bench_cmd).parameters["methods"].default == DEFAULT_MATCHER
    assert inspect.signature(video_cmd).parameters["method"].default is None  # then DEFAULT_MATCHER


def test_methods_name_lists_options_as_flags(run):
    res = run("methods", "neural")
    assert res.exit_code == 0 and "--rotations" in res.output and "--threads" in res.output
    assert run("methods", "nope").exit_code == 2


def test_every_flag_of_the_issue_is_in_help(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    text = run("match", "--help").output + run("video", "--help").output
    for flag in ("--rotations", "--threads", "--device", "--save", "--overlays", "--shard", "--merge",
                 "--resume", "--presence-threshold", "--ratio"):
        assert flag in text, flag
    assert "--rotations full --threads 2 --device cpu" in text


def test_json_dash_prints_json_to_stdout(run, photo):
    res = run("match", photo, photo, "--roi", "150,100,150,120", "-m", "ncc", "--json", "-")
    assert res.exit_code == 0
    assert json.loads(res.output)["box"] == [150, 100, 150, 120] and "found=True" in res.stderr


def test_out_with_unknown_suffix_is_refused_before_work(run, photo, tmp_path, monkeypatch):
    seen = _capture_load(monkeypatch)
    res = run("match", photo, photo, "-m", "ncc", "--out", tmp_path / "o.xyz", "--json", tmp_path / "r.json")
    assert res.exit_code == 2 and "unknown image suffix" in res.stderr
    assert seen == [] and not (tmp_path / "r.json").exists()


def test_version(run):
    import tmatch

    res = run("--version")
    assert res.exit_code == 0 and res.output.strip() == f"tmatch {tmatch.__version__}"


@pytest.mark.parametrize("args,message", [
    (["--out", "{photo}"], "writing it would destroy it"),
    (["--json", "{photo}"], "writing it would destroy it"),
    (["--json", "{tmp}"], "is a folder"),
    (["--all", "--min-score", "nan"], "--min-score must be a finite number"),
    (["-m", "ncc", "--threads", "0"], "--threads must be >= 1"),
])
def test_outputs_and_numbers_judged_before_any_work(args, message, run, photo, tmp_path, astronaut):
    """Issue 13: `match tpl.png x.png --out x.png` overwrote the photo; an existing folder as
    --json left a traceback; NaN was accepted. Each is one line, exit 2, the photo untouched."""
    tpl = tmp_path / "tpl.png"
    cv2.imwrite(str(tpl), cv2.cvtColor(astronaut[100:200, 100:220], cv2.COLOR_RGB2BGR))
    before = photo.read_bytes()
    args = [a.format(photo=photo, tmp=tmp_path) for a in args]
    res = run("match", tpl, photo, "-m", "ncc", *args)
    assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert photo.read_bytes() == before


def test_threads_applies_to_opencv_matchers_too(run, photo, tmp_path, astronaut, monkeypatch):
    """`--threads N` with an OpenCV matcher (no threads option of its own) runs the match with
    OpenCV's pool at N, and restores it afterwards."""
    import cv2 as cv

    seen = []
    from tmatch.matchers.ncc import NCCMatcher

    real = NCCMatcher.match
    monkeypatch.setattr(NCCMatcher, "match", lambda self, *a: seen.append(cv.getNumThreads()) or real(self, *a))
    tpl = tmp_path / "tpl.png"
    cv2.imwrite(str(tpl), cv2.cvtColor(astronaut[100:200, 100:220], cv2.COLOR_RGB2BGR))
    before = cv.getNumThreads()
    n = 3 if before != 3 else 2  # a count the pool does not have already
    res = run("match", tpl, photo, "-m", "ncc", "--threads", str(n))
    assert res.exit_code == 0 and "found=True" in res.output
    assert seen == [n] and cv.getNumThreads() == before


def test_fail_if_absent_exits_1_only_when_absent(run, photo, tmp_path, chelsea, astronaut):
    """For scripts (issue 23 item 13): found -> 0, absent -> 1, in one pair and in a batch."""
    there = run("match", photo, photo, "--roi", "150,100,150,120", "-m", "sift", "--fail-if-absent")
    assert there.exit_code == 0 and "found=True" in there.output
    other = tmp_path / "cat.png"
    cv2.imwrite(str(other), cv2.cvtColor(chelsea, cv2.COLOR_RGB2BGR))
    tpl = tmp_path / "t.png"
    cv2.imwrite(str(tpl), cv2.cvtColor(astronaut[100:220, 150:300], cv2.COLOR_RGB2BGR))
    absent = run("match", tpl, other, "-m", "sift", "--fail-if-absent")
    assert absent.exit_code == 1 and "found=False" in absent.output
    assert run("match", tpl, other, "-m", "sift").exit_code == 0  # without the flag: absent is an answer
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    assert run("match", tpl, folder, "-m", "sift", "--fail-if-absent").exit_code == 0
    cv2.imwrite(str(folder / "b.png"), cv2.cvtColor(chelsea, cv2.COLOR_RGB2BGR))
    assert run("match", tpl, folder, "-m", "sift", "--fail-if-absent").exit_code == 1
