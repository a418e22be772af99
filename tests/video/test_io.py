"""Sources, sinks and stopping: what is read, what is written, what survives an interruption."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tmatch import io, video
from tmatch.errors import DataError, InputError, TmatchError

from .conftest import read_video


# ---------------------------------------------------------------- sources
def test_smoke_video_file_source_reports_and_yields_every_frame(clip_files, small_clip):
    with video.open_source(clip_files["mp4"]) as src:
        assert src.kind == "file" and src.frame_hw == (240, 320) and src.fps == pytest.approx(25)
        assert src.frame_count == len(small_clip)
        frames = list(src)
        assert [f.index for f in frames] == list(range(len(small_clip)))
        assert frames[3].time == pytest.approx(3 / 25)
        assert all(f.image is not None and f.image.shape == (240, 320, 3) for f in frames)
        # Lossy, but the same picture (RGB order kept).
        assert np.abs(frames[5].image.astype(int) - small_clip.frames[5]).mean() < 8
        assert np.abs(src.frame(7).astype(int) - small_clip.frames[7]).mean() < 8


def test_feature_folder_source_natural_order_and_corrupt_files(tmp_path, small_clip):
    for i in (10, 2, 1):
        io.write_image(tmp_path / f"f{i}.png", small_clip.frames[i])
    (tmp_path / "f5.png").write_bytes(b"not a png at all")
    (tmp_path / "notes.txt").write_text("ignored")
    with video.open_source(tmp_path, fps=10) as src:
        assert src.kind == "folder" and src.fps == 10 and src.frame_count == 4
        frames = list(src)
    assert [f.name for f in frames] == ["f1.png", "f2.png", "f5.png", "f10.png"]
    assert [f.image is None for f in frames] == [False, False, True, False]
    assert frames[3].time == pytest.approx(0.3)
    with pytest.raises(InputError, match="cannot be read"):
        video.open_source(tmp_path).frame(2)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100, "truncated"])
def test_exception_unreadable_video_is_a_clear_error(tmp_path, clip_files, content):
    bad = tmp_path / "bad.mp4"
    if content == "truncated":  # an MP4 cut short has no index: nothing can be decoded
        data = clip_files["mp4"].read_bytes()
        content = data[: len(data) // 2]
    bad.write_bytes(content)
    with pytest.raises(InputError, match="video"):
        video.open_source(bad)


def test_exception_missing_empty_and_camera_sources(tmp_path):
    with pytest.raises(InputError, match="not found"):
        video.open_source(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="no image files"):
        video.open_source(tmp_path)
    with pytest.raises(InputError, match="camera 97"):
        video.open_source(97)
    with pytest.raises(InputError):
        video.open_source([None, None])


# ---------------------------------------------------------------- sinks
def test_feature_video_sink_codec_fallback_and_even_size(tmp_path):
    frames = [np.full((41, 61, 3), v, np.uint8) for v in (0, 120, 240)]
    with video.VideoSink(tmp_path / "a.mp4", fps=10) as sink:
        for f in frames:
            sink.write(f)
    assert sink.codec in ("avc1", "mp4v") and sink.frame_hw == (40, 60)
    back = read_video(tmp_path / "a.mp4")
    assert len(back) == 3 and back[0].shape == (40, 60, 3)
    assert abs(int(back[1].mean()) - 120) < 6
    avi = video.write_clip(frames, tmp_path / "a.avi", fps=10)
    assert len(read_video(avi)) == 3
    assert video.codec_candidates(avi) == ("MJPG", "XVID", "mp4v")
    with pytest.raises(InputError, match="suffix"):
        video.VideoSink(tmp_path / "a.txt", fps=10)
    with pytest.raises(TmatchError, match="codec"):
        video.write_clip(frames, tmp_path / "b.mp4", codec="ZZZZ")


def test_feature_segments_are_joined_into_one_video(tmp_path, small_clip):
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    out = tmp_path / "seg.mp4"
    s = video.run_video(video.open_source(small_clip.frames), tracker, out=out, segment_seconds=0.2)
    assert s.frames_written == len(small_clip) and s.segments == []
    assert len(read_video(out)) == len(small_clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.mp4"]


def test_feature_read_jsonl_drops_a_torn_last_line(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"index": 0}\n{"index": 1}\n{"ind')
    assert [r["index"] for r in video.read_jsonl(p)] == [0, 1]
    p.write_text('{"index": 0}\n{"ind\n{"index": 2}\n')
    with pytest.raises(DataError):
        video.read_jsonl(p)


# ---------------------------------------------------------------- the loop
def test_feature_corrupt_and_resized_frames_are_counted(tmp_path, small_clip):
    frames = list(small_clip.frames[:6])
    frames[2] = None  # unreadable
    frames[4] = np.ascontiguousarray(cv2.resize(frames[4], (400, 300)))  # another resolution
    tracker = video.VideoTracker(tmatch.load_matcher("sift"), small_clip.template)
    recs = tmp_path / "r.jsonl"
    s = video.run_video(video.open_source(frames), tracker, out=tmp_path / "o.mp4", jsonl=recs)
    assert (s.frames_read, s.frames_corrupt, s.frames_resized, s.frames_written) == (5, 1, 1, 5)
    lines = video.read_jsonl(recs)
    assert [r["index"] for r in lines] == [0, 1, 3, 4, 5]
    assert lines[3]["image_size"] == [300, 400] and lines[3]["found"]  # matched at native size
    back = read_video(tmp_path / "o.mp4")
    assert len(back) == 5 and all(b.shape == (240, 320, 3) for b in back)


def test_feature_every_n_matches_a_subset_but_writes_every_frame(tmp_path, small_clip):
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    s = video.run_video(video.open_source(small_clip.frames), tracker, every=5,
                        out=tmp_path / "o.mp4", jsonl=tmp_path / "r.jsonl", layout="panels")
    assert s.frames_matched == 3 and s.frames_written == 12
    assert [r["index"] for r in video.read_jsonl(tmp_path / "r.jsonl")] == [0, 5, 10]
    back = read_video(tmp_path / "o.mp4")
    assert len(back) == 12 and back[0].shape[0] == 240 and back[0].shape[1] > 3 * 320
    with pytest.raises(InputError):
        video.run_video(video.open_source(small_clip.frames), tracker, every=0)
    with pytest.raises(InputError):
        video.run_video(video.open_source(small_clip.frames), tracker, layout="grid")


def test_feature_interrupt_leaves_video_and_json_lines_valid(tmp_path, small_clip):
    tracker = video.VideoTracker(tmatch.load_matcher("orb"), small_clip.template)
    seen = []

    def ctrl_c_at_five(r):
        seen.append(r.frame.index)
        if len(seen) == 5:
            raise KeyboardInterrupt

    s = video.run_video(video.open_source(small_clip.frames), tracker, out=tmp_path / "o.mp4",
                        jsonl=tmp_path / "r.jsonl", on_frame=ctrl_c_at_five)
    assert s.stopped == "SIGINT" and s.interrupted
    lines = video.read_jsonl(tmp_path / "r.jsonl")
    assert [r["index"] for r in lines] == [0, 1, 2, 3, 4]
    assert len(read_video(tmp_path / "o.mp4")) == 5
    s = video.run_video(video.open_source(small_clip.frames), tracker, max_frames=3)
    assert s.stopped == "max-frames" and s.frames_read == 3
    s = video.run_video(video.open_source(small_clip.frames), tracker, on_frame=lambda r: False)
    assert s.stopped == "callback" and s.frames_read == 1


class _FakeCamera:
    """Stands in for ``cv2.VideoCapture(index)``: the small clip as BGR, one dropped read."""

    frames: list = []

    def __init__(self, index):
        self.queue = list(self.frames)

    def isOpened(self):
        return True

    def read(self):
        if not self.queue:
            return False, None
        img = self.queue.pop(0)
        return (False, None) if img is None else (True, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.queue = []


def test_feature_camera_template_from_a_live_frame_then_matching_continues(
        monkeypatch, run, small_clip, tmp_path):
    frames = list(small_clip.frames[:8])
    frames.insert(5, None)  # a dropped read
    monkeypatch.setattr(_FakeCamera, "frames", frames)
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCamera)
    with video.open_source(0) as cam:
        assert cam.kind == "camera" and cam.fps == 30 and cam.frame_count is None
        assert np.array_equal(cam.frame(2), small_clip.frames[2])
        rest = list(cam)  # the stream goes on from the template's frame
    assert [f.index for f in rest] == [2, 3, 4, 5, 6, 7, 8]
    assert [f.image is None for f in rest] == [False, False, False, True, False, False, False]
    assert rest[-1].time >= rest[0].time >= 0
    recs = tmp_path / "cam.jsonl"
    box = ",".join(str(v) for v in io_box(small_clip, 1))
    res = run("video", "--camera", 0, "--roi", box, "--roi-frame", 1, "--method", "orb",
              "--jsonl", recs)
    assert res.exit_code == 0, res.output
    assert "1 corrupt frame(s) skipped" in res.output
    lines = video.read_jsonl(recs)
    assert [r["index"] for r in lines] == [1, 2, 3, 4, 6, 7, 8] and lines[0]["found"]


def io_box(clip, k):
    from tmatch import geometry

    return geometry.box_from_polygon(clip.polygons[k], clip.frames[k].shape[:2])
