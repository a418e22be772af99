"""``tmatch video``: the acceptance run on a generated clip, template choices, and refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tmatch import geometry, rle, video

from .conftest import read_video


def test_feature_writes_playable_mp4_and_complete_json_lines(run, clip_files, small_clip, tmp_path):
    out, recs = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    res = run("video", clip_files["mp4"], "--template", clip_files["template"],
              "--method", "sift", "--out", out, "--jsonl", recs)
    assert res.exit_code == 0, res.output
    n = len(small_clip)
    assert f"{n} frame(s) matched" in res.output
    back = read_video(out)
    assert len(back) == n and back[0].shape == (240, 320, 3)
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(small_clip.fps)
    cap.release()
    lines = video.read_jsonl(recs)
    assert [r["index"] for r in lines] == list(range(n))
    assert lines[4]["time"] == pytest.approx(4 / small_clip.fps)
    for key in ("found", "score", "polygon", "box", "mask", "homography", "ms", "method"):
        assert key in lines[0]
    ious = [geometry.iou(rle.decode(r["mask"]), small_clip.truth_mask(i))
            for i, r in enumerate(lines)]
    assert np.mean(np.array(ious) >= 0.8) >= 0.9, np.round(ious, 2)


def test_feature_roi_cut_from_a_chosen_frame_of_a_folder(run, clip_files, small_clip, tmp_path):
    k = 6
    x, y, w, h = geometry.box_from_polygon(small_clip.polygons[k], (240, 320))
    recs = tmp_path / "r.jsonl"
    res = run("video", clip_files["folder"], "--roi", f"{x},{y},{w},{h}", "--roi-frame", k,
              "--method", "orb", "--jsonl", recs, "--track", "--every", "2")
    assert res.exit_code == 0, res.output
    lines = video.read_jsonl(recs)
    assert [r["index"] for r in lines] == list(range(0, len(small_clip), 2))
    assert lines[k // 2]["found"] and lines[k // 2]["file"] == f"frame_{k:05d}.png"
    assert geometry.box_iou(tuple(lines[k // 2]["box"]), (x, y, w, h)) >= 0.9


def test_feature_panels_layout(run, clip_files, small_clip, tmp_path):
    out = tmp_path / "p.avi"
    res = run("video", clip_files["mp4"], "--template", clip_files["template"], "--method", "orb",
              "--layout", "panels", "--out", out, "--max-frames", 4)
    assert res.exit_code == 0, res.output
    back = read_video(out)
    assert len(back) == 4 and back[0].shape[0] == 240 and back[0].shape[1] > 3 * 320


@pytest.mark.parametrize("args, message", [
    ([], "SOURCE"),
    (["{mp4}", "--camera", "0", "--template", "{tpl}"], "SOURCE"),
    (["{mp4}"], "--template FILE"),
    (["{mp4}", "--select", "--roi", "1,2,3,4"], "--select"),
    (["{mp4}", "--template", "{tpl}", "--layout", "grid"], "--layout"),
    (["{mp4}", "--template", "{tpl}", "--out", "o.gif"], "suffix"),
    (["{dir}/missing.mp4", "--template", "{tpl}"], "not found"),
    (["{tpl}", "--template", "{tpl}"], "video"),  # an image is not a video
    (["{mp4}", "--roi", "0,0,900,20"], "outside"),
    (["{mp4}", "--roi", "1,2,3,4", "--roi-frame", "99"], "no frame 99"),
    (["{mp4}", "--template", "{tpl}", "--method", "nope"], "unknown matcher"),
    (["{mp4}", "--template", "{tpl}", "--codec", "ZZZZ", "--out", "{dir}/z.mp4"], "codec"),
])
def test_exception_bad_invocations_exit_2_with_a_message(run, clip_files, args, message):
    fill = {"mp4": clip_files["mp4"], "tpl": clip_files["template"], "dir": clip_files["dir"],
            "big": clip_files["big"]}
    res = run("video", *[a.format(**fill) for a in args])
    assert res.exit_code == 2, res.output
    text = res.output + (str(res.exception) if res.exception else "")
    assert message in text


@pytest.mark.skipif(video.display_problem() is None, reason="a display exists here")
@pytest.mark.parametrize("flag", ["--select", "--show"])
def test_exception_windows_refused_when_headless(run, clip_files, flag):
    extra = [] if flag == "--select" else ["--template", clip_files["template"]]
    res = run("video", clip_files["mp4"], flag, *extra)
    assert res.exit_code == 2
    assert "needs a display" in str(res.exception)
    with pytest.raises(Exception, match="cannot select"):
        video.select_roi(np.zeros((10, 10, 3), np.uint8))


def test_feature_template_larger_than_the_frames_is_not_found_not_refused(run, clip_files,
                                                                          tmp_path):
    recs = tmp_path / "r.jsonl"
    res = run("video", clip_files["mp4"], "--template", clip_files["big"], "--method", "ncc",
              "--max-frames", 2, "--jsonl", recs)
    assert res.exit_code == 0, res.output
    assert "found in 0" in res.output
    recs = video.read_jsonl(recs)
    assert [r["found"] for r in recs] == [False, False]
    assert all(r["extra"]["reason"] for r in recs)  # (this template is also flat: "no texture")


def test_feature_missing_output_folders_are_created(run, clip_files, tmp_path):
    out, recs = tmp_path / "new" / "deeper" / "o.avi", tmp_path / "other" / "r.jsonl"
    res = run("video", clip_files["mp4"], "--template", clip_files["template"], "--method", "orb",
              "--max-frames", 2, "--out", out, "--jsonl", recs)
    assert res.exit_code == 0, res.output
    assert len(read_video(out)) == 2 and len(video.read_jsonl(recs)) == 2


# Refusals judged before any work, run as the `tmatch` script is: exit 2, one line on stderr,
# no traceback, nothing written (the source untouched).
@pytest.mark.parametrize("args, message", [
    (["--out", "{mp4}"], "is the input SOURCE"),
    (["--jsonl", "{mp4}"], "is the input SOURCE"),
    (["--jsonl", "{tpl}"], "is the input --template"),
    (["--out", "{out}/o.mp4", "--jsonl", "{out}/o.mp4"], "same path"),
    (["--out", "{tpl}/o.mp4"], "is a file, not a folder"),
    (["--out", "{out}/folder.mp4"], "is a folder"),
    (["--jsonl", "{out}"], "is a folder"),
    (["--out", "{out}/o.gif"], ".mp4, .m4v, .mov, .mkv, .avi"),
    (["--out", "{out}/o"], "no suffix"),
    (["--fps", "1e9", "--out", "{out}/o.mp4"], "--fps must be > 0 and <= 1000"),
    (["--fps", "nan"], "--fps"),
    (["--fps", "-5"], "--fps"),
    (["--segment", "nan", "--out", "{out}/o.mp4"], "--segment must be a finite number >= 0"),
    (["--segment", "inf", "--out", "{out}/o.mp4"], "--segment"),
    (["--track-margin", "nan"], "--track-margin"),
    (["--track-margin", "-1"], "--track-margin"),
    (["--every", "0"], "--every must be a finite number >= 1"),
    (["--roi-frame", "-1"], "--roi-frame"),
])
def test_exception_refusals_are_one_line_exit_2_and_write_nothing(clip_files, tmp_path, args,
                                                                  message):
    mp4 = tmp_path / "in.mp4"
    mp4.write_bytes(clip_files["mp4"].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "folder.mp4").mkdir()
    fill = {"mp4": mp4, "tpl": clip_files["template"], "out": out}
    before = sorted(p.name for p in out.rglob("*"))
    proc = subprocess.run(
        [sys.executable, "-m", "tmatch", "video", mp4, "--template", clip_files["template"],
         *[a.format(**fill) for a in args]],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), proc.stderr
    assert message in err[0] and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing written, nor hidden
    assert mp4.read_bytes() == clip_files["mp4"].read_bytes()  # the source untouched


def test_feature_join_refuses_cleanly_when_there_is_nothing_to_join(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tmatch", "video", "--join", tmp_path / "o.mp4"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no parts of")
    assert len(proc.stderr.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []
