"""Issue 25, items 11-13: every bad input is one line and exit code 2, never a traceback; nothing
odd is accepted silently; exported folders get the usual permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tmatch
from tmatch.errors import InputError


def _tmatch(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tmatch", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture()
def png(tmp_path):
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8))
    return p


@pytest.mark.parametrize("args, message", [
    (["serve", "--log-level", "bogus"], "--log-level must be one of"),
    (["train", "{png}"], "is not a text YAML file"),
    (["data", "samples", "/proc/tmatch-x"], "/proc/tmatch-x"),
    (["demo", "--methods", ","], "--methods names no matcher"),
    (["match", "{png}", "{png}", "--roi", "0.5,0,10,10"], "four integers"),
    (["match", "{png}.nothing-*.png", "{png}"], "no images match"),  # a glob naming nothing (NameError once)
    (["match", "{png}", "{png}", "--region", "1,2,3"], "--region must be 'x,y,w,h'"),
    (["match", "{png}", "{png}", "--region", "500,500,10,10"], "lies outside the 120x90 image"),
    (["match", "{png}", "{png}", "--region", "0,0,0,10"], "zero area"),
])
def test_bad_input_is_one_line_and_exit_2(run, png, args, message):
    r = run(*[a.format(png=png) for a in args])  # in-process: the entry point's own exit and streams
    assert r.exit_code == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:") and message in r.stderr


def test_a_warning_is_one_line_without_source(tmp_path):
    f = tmp_path / "pages.tiff"
    page = (np.random.default_rng(1).random((40, 40)) * 255).astype(np.uint8)
    cv2.imwritemulti(str(f), [page, page, page])
    r = _tmatch("match", f, f, "-m", "ncc")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"warning: template {f.name} has 3 pages; page 1 is used",
                                     f"warning: image {f.name} has 3 pages; page 1 is used"]


def test_big_endian_16_bit_pixels_are_scaled_like_native_ones():
    a = np.full((8, 8), 30000, np.uint16)
    assert tmatch.read_image(a.astype(">u2"))[0, 0, 0] == tmatch.read_image(a)[0, 0, 0] == 117


def test_true_is_not_a_number_option():
    with pytest.raises(InputError, match="ratio must be a number"):
        tmatch.load_matcher("sift", ratio=True)
    with pytest.raises(InputError):
        tmatch.load_matcher("ncc", scales=[True, 2.0])


def test_match_all_refuses_a_nan_min_score(astronaut):
    with pytest.raises(InputError, match="min_score must be a finite number"):
        tmatch.load_matcher("ncc").match_all(astronaut[:60, :60], astronaut, min_score=float("nan"))


def test_an_exported_folder_has_the_usual_permissions(tmp_path):
    from tmatch.files import atomic_dir

    with atomic_dir(tmp_path / "out") as t:
        (t / "x.txt").write_text("1")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o777 & ~mask


def test_a_saved_file_has_the_usual_permissions_or_keeps_those_it_had(tmp_path):
    """safetensors' writer creates 0600 files: what atomic_save publishes gets the umask's mode,
    and a file it replaces keeps its own."""
    from safetensors.numpy import save_file

    from tmatch.files import atomic_save

    new = atomic_save(tmp_path / "w.safetensors", lambda p: save_file({"a": np.zeros(2)}, str(p)))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o666 & ~mask
    os.chmod(new, 0o640)
    atomic_save(new, lambda p: save_file({"a": np.ones(2)}, str(p)))
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o640


def test_an_install_hint_prints_literally_in_the_demo(run, tmp_path, monkeypatch):
    """Issue 23 item 5: rich took `[train]` for markup and printed `pip install "tmatch"`."""
    import tmatch.demo

    def fake(out, on_skip=None, **kw):
        on_skip("neural-seg", 'needs torch, which this install lacks: pip install "tmatch[train]"')
        return []

    monkeypatch.setattr(tmatch.demo, "run_demo", fake)
    res = run("demo", "--out", tmp_path / "d")
    assert res.exit_code == 0 and 'pip install "tmatch[train]"' in res.output


def test_the_decoders_own_stderr_lines_become_one_line_of_ours(tmp_path, png):
    """Issue 25 item 13: libpng printed its own line (and OpenCV its log line) before ours. A
    subprocess: those lines are written on file descriptor 2 by native code."""
    data = png.read_bytes()
    bad_crc = bytearray(data)
    bad_crc[40] ^= 0xFF  # inside the first IDAT chunk's header
    cases = {"crc.png": bytes(bad_crc), "truncated.png": data[: len(data) // 3]}
    ok, buf = cv2.imencode(".jpg", (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8))
    jpg = bytearray(buf.tobytes())
    jpg[len(jpg) // 2: len(jpg) // 2 + 40] = b"\xff" * 40  # decodable, with damage
    cases["damaged.jpg"] = bytes(jpg)
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        r = _tmatch("match", tmp_path / name, png, "-m", "ncc")
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (name, r.stderr)
        if name.endswith(".png"):
            assert r.returncode == 2 and lines[0].startswith("error: cannot read template"), r.stderr
        else:
            assert r.returncode == 0 and lines[0].startswith("warning: template damaged.jpg is damaged")
