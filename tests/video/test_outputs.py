"""Outputs appear at their final name only when complete: staging files, kills, reruns, joins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tmatch
from tmatch import io, rle, video
from tmatch.errors import InputError
from tmatch.video import outputs

from .conftest import read_video

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- in process
def test_feature_sinks_write_under_a_hidden_name_until_closed(tmp_path):
    frames = [np.full((40, 60, 3), v, np.uint8) for v in (0, 120, 240)]
    out, recs = tmp_path / "a.mp4", tmp_path / "a.jsonl"
    sink, lines = video.VideoSink(out, fps=10), video.JsonlSink(recs)
    for f in frames:
        sink.write(f)
        lines.write({"v": int(f[0, 0, 0])})
    assert not out.exists() and not recs.exists()  # a reader never sees a file being written
    assert len(_hidden(tmp_path)) == 2
    sink.close()
    lines.close()
    assert len(read_video(out)) == 3 and len(video.read_jsonl(recs)) == 3
    assert _hidden(tmp_path) == []


def test_feature_an_error_mid_run_leaves_no_output(tmp_path, small_clip):
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    out, recs = tmp_path / "o.mp4", tmp_path / "r.jsonl"

    def fail_at_three(r):
        if r.frame.index == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        video.run_video(video.open_source(small_clip.frames), tracker, out=out, jsonl=recs,
                        on_frame=fail_at_three)
    assert list(tmp_path.iterdir()) == []


def test_feature_join_parts_makes_one_video_and_removes_the_parts(tmp_path, small_clip):
    out = tmp_path / "o.mp4"
    for k in range(3):  # what a killed --segment run leaves: closed parts
        video.write_clip(small_clip.frames[4 * k:4 * k + 4], outputs.part_path(out, k), fps=25)
    assert [p.name for p in video.leftover_parts(out)] == [
        "o.part000.mp4", "o.part001.mp4", "o.part002.mp4"]
    assert video.join_parts(out) == 12
    assert len(read_video(out)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    with pytest.raises(InputError, match="no parts"):
        video.join_parts(out)


def test_feature_a_rerun_joins_parts_a_killed_run_left_then_replaces_them(tmp_path, small_clip):
    out = tmp_path / "o.mp4"
    video.write_clip(small_clip.frames[:5], outputs.part_path(out, 0), fps=25)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".o.part001.mp4.{dead}.tmp.mp4"  # the part being written at the kill
    stale.write_bytes(b"torn")
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    s = video.run_video(video.open_source(small_clip.frames), tracker, out=out,
                        segment_seconds=0.2)
    assert s.leftover_frames == 5 and s.frames_written == 12
    assert len(read_video(out)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_feature_a_template_larger_than_the_frames_is_searched_and_not_found(tmp_path,
                                                                             small_clip):
    big = np.ascontiguousarray(np.tile(small_clip.template, (2, 2, 1)))  # 400x400 > 320x240
    tracker = video.VideoTracker(tmatch.load_matcher("ncc"), big)
    s = video.run_video(video.open_source(small_clip.frames[:3]), tracker,
                        jsonl=tmp_path / "r.jsonl")
    assert (s.frames_matched, s.frames_found) == (3, 0)
    lines = video.read_jsonl(tmp_path / "r.jsonl")
    assert [r["found"] for r in lines] == [False] * 3


def test_exception_run_video_refuses_to_write_over_its_source(tmp_path, clip_files, small_clip):
    src = tmp_path / "in.mp4"
    src.write_bytes(clip_files["mp4"].read_bytes())
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    for kwargs in ({"out": src}, {"jsonl": tmp_path / "." / "in.mp4"}):
        with video.open_source(src) as source, pytest.raises(InputError, match="the source"):
            video.run_video(source, tracker, **kwargs)
    assert src.read_bytes() == clip_files["mp4"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# ---------------------------------------------------------------- real processes
@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """A 120-frame clip, long enough to be interrupted while running."""
    clip = video.synthetic_clip(n_frames=120, size=(240, 320), seed=2, noise=0)
    d = tmp_path_factory.mktemp("long")
    return video.write_clip(clip.frames, d / "long.mp4"), io.write_image(d / "t.png", clip.template)


def _cmd(args):
    return [sys.executable, "-m", "tmatch", "video", *map(str, args)]


def _start(args):
    return subprocess.Popen(_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _staging(path):
    found = sorted(path.parent.glob(f".{path.name}.*.tmp*"))
    return found[0] if found else None


def _wait_lines(proc, path, n, timeout=60.0):
    """Wait until the run has written ``n`` lines to the staging file of ``path``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        staging = _staging(path)
        if staging is not None and staging.read_text().count("\n") >= n:
            return staging
        if proc.poll() is not None:
            pytest.fail(f"finished before {n} lines: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no progress")


def _strict_lines(path):
    text = path.read_text()
    assert text.endswith("\n")  # the last frame's line is complete
    return [json.loads(line) for line in text.splitlines()]


@posix_only
def test_feature_sigterm_stops_cleanly_with_playable_video(tmp_path, long_clip):
    mp4, tpl = long_clip
    out, recs = tmp_path / "o.mp4", tmp_path / "r.jsonl"
    proc = _start([mp4, "--template", tpl, "--method", "sift", "--out", out, "--jsonl", recs])
    _wait_lines(proc, recs, 4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = _strict_lines(recs)
    assert 4 <= len(lines) < 120
    assert [r["index"] for r in lines] == list(range(len(lines)))
    assert rle.decode(lines[-1]["mask"]).shape == (240, 320)
    assert len(read_video(out)) == len(lines)  # every matched frame is in the playable video
    assert _hidden(tmp_path) == []


@posix_only
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_feature_sigkill_leaves_nothing_at_the_final_names_and_a_rerun_completes(
        tmp_path, long_clip, suffix):
    mp4, tpl = long_clip
    out, recs = tmp_path / f"o{suffix}", tmp_path / "r.jsonl"
    args = [mp4, "--template", tpl, "--method", "orb", "--out", out, "--jsonl", recs]
    proc = _start(args)
    staging = _wait_lines(proc, recs, 10)
    proc.kill()
    proc.communicate(timeout=30)
    assert not out.exists() and not recs.exists()  # no torn file at a final name
    assert len(_strict_lines(staging)) >= 10  # the killed run's results are kept, hidden
    done = subprocess.run(_cmd(args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [r["index"] for r in _strict_lines(recs)] == list(range(120))
    assert len(read_video(out)) == 120
    assert _hidden(tmp_path) == []  # the killed run's staging files are gone


@posix_only
def test_feature_sigkill_keeps_closed_segments_and_join_makes_the_video(tmp_path, long_clip):
    mp4, tpl = long_clip
    out, recs = tmp_path / "o.mp4", tmp_path / "r.jsonl"
    proc = _start([mp4, "--template", tpl, "--method", "sift", "--out", out, "--jsonl", recs,
                   "--segment", "0.2"])  # parts of 5 frames at 25 FPS
    _wait_lines(proc, recs, 12)
    proc.kill()
    proc.communicate(timeout=30)
    assert not out.exists()
    parts = video.leftover_parts(out)
    assert len(parts) >= 2
    kept = _strict_lines(recs)  # the JSON lines of every finished part are at the final name
    assert len(kept) >= 5 * (len(parts) - 1) and len(kept) % 5 == 0
    assert [r["index"] for r in kept] == list(range(len(kept)))
    for p in parts:  # every part at a final name is closed and plays
        assert len(read_video(p)) == 5
    done = subprocess.run(_cmd(["--join", out]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"joined {5 * len(parts)} frame(s)" in done.stdout
    assert len(read_video(out)) == 5 * len(parts)
    assert video.leftover_parts(out) == [] and not _staging(out)


@posix_only
def test_feature_a_rerun_after_a_killed_segmented_run_leaves_no_hidden_file(tmp_path, long_clip):
    mp4, tpl = long_clip
    out, recs = tmp_path / "o.mp4", tmp_path / "r.jsonl"
    args = [mp4, "--template", tpl, "--method", "sift", "--out", out, "--jsonl", recs, "--segment", "0.2"]
    proc = _start(args)
    _wait_lines(proc, recs, 8)
    proc.kill()
    proc.communicate(timeout=30)
    assert _hidden(tmp_path)  # the killed run's staging files
    done = subprocess.run(_cmd(args + ["--max-frames", "6"]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _hidden(tmp_path) == []
    assert len(_strict_lines(recs)) == 6 and len(read_video(out)) == 6
