"""VideoTracker: the template prepared once, the search window, mapping crop results back."""

from __future__ import annotations

import numpy as np
import pytest

import tmatch
from tmatch import geometry, video
from tmatch.errors import InputError


def test_feature_search_window_grows_the_box_and_stays_inside():
    # 20x10 box grown by half its size per side: 40x20, sides rounded up to 32 px.
    window = video.search_window((100, 100, 20, 10), (480, 640), (10, 20), margin=0.5)
    assert window == (78, 89, 64, 32)
    assert video.search_window((100, 100, 20, 10), (480, 640), (10, 20), snap=1) == (90, 95, 40, 20)
    # Never smaller than the template, shifted to fit inside the image.
    assert video.search_window((0, 0, 10, 10), (480, 640), (40, 60), snap=1) == (0, 0, 60, 40)
    window = video.search_window((630, 470, 10, 10), (480, 640), (20, 20), margin=1.0)
    assert window == (608, 448, 32, 32)
    # An imposed size, still inside the image.
    window = video.search_window((630, 470, 10, 10), (480, 640), (20, 20), size=(64, 96))
    assert window == (544, 416, 96, 64)
    # A window covering most of the image is not worth it.
    assert video.search_window((100, 100, 300, 300), (480, 640), (50, 50), margin=0.5) is None


def test_feature_crop_result_mapped_back_equals_full_frame_result(small_clip):
    sift = tmatch.load_matcher("sift")
    frame = small_clip.frames[4]
    full = sift.match(small_clip.template, frame)
    x, y, w, h = 40, 30, 240, 200
    local = sift.match(small_clip.template, frame[y:y + h, x:x + w])
    back = video.shift_match(local, (x, y), frame.shape[:2])
    assert back.found and back.mask.shape == frame.shape[:2]
    assert np.abs(back.polygon - full.polygon).max() < 2.0
    assert np.allclose(geometry.template_polygon(back.homography, small_clip.template.shape[:2]),
                       back.polygon)
    assert geometry.iou(back.mask, geometry.mask_from_polygon(back.polygon, frame.shape[:2])) == 1.0
    assert geometry.iou(back.mask, small_clip.truth_mask(4)) >= 0.9


def test_feature_shift_of_a_mask_only_match_pastes_the_mask():
    m = tmatch.Match(found=True, score=0.9, polygon=None, box=(1, 2, 3, 4),
                     mask=np.zeros((10, 10), bool))
    m.mask[2:6, 1:4] = True
    out = video.shift_match(m, (5, 7), (30, 20))
    assert out.mask.shape == (30, 20) and out.box == (6, 9, 3, 4)
    assert out.mask.sum() == 12 and out.mask[9:13, 6:9].all()


def test_feature_shift_redraws_a_polygon_that_reaches_past_the_crop():
    poly = geometry.rect_polygon(5, 5, 10, 10)  # a 10x10 crop holds only its top-left quarter
    hm = np.array([[1.0, 0, 5], [0, 1.0, 5], [0, 0, 1]])
    m = tmatch.Match(found=True, score=0.9, polygon=poly, box=(5, 5, 5, 5),
                     mask=geometry.mask_from_polygon(poly, (10, 10)), homography=hm)
    out = video.shift_match(m, (3, 4), (30, 30))
    assert out.mask.sum() == 100 and out.box == (8, 9, 10, 10)
    assert np.allclose(out.polygon, geometry.rect_polygon(8, 9, 10, 10))
    assert np.allclose(geometry.template_polygon(out.homography, (10, 10)), out.polygon)


def test_feature_template_prepared_once_and_match_never_called(small_clip, monkeypatch):
    matcher = tmatch.load_matcher("orb")
    calls = {"prepare": 0}
    real_prepare = matcher.prepare

    def counting_prepare(tpl):
        calls["prepare"] += 1
        return real_prepare(tpl)

    def forbidden(*a, **k):
        raise AssertionError("Matcher.match must not be called per frame")

    monkeypatch.setattr(matcher, "prepare", counting_prepare)
    monkeypatch.setattr(matcher, "match", forbidden)
    tracker = video.VideoTracker(matcher, small_clip.template, track=True)
    summary = video.run_video(video.open_source(small_clip.frames), tracker)
    assert calls["prepare"] == 1 and summary.frames_matched == len(small_clip)
    assert summary.frames_found >= 10


def test_feature_track_falls_back_to_whole_frame_when_the_object_jumps():
    clip = video.synthetic_clip(n_frames=2, size=(480, 640), scale=(0.6, 0.6), rotation=0)
    tracker = video.VideoTracker(tmatch.load_matcher("sift"), clip.template, track=True)
    first = tracker.step(clip.frames[0])
    far = tracker.step(clip.frames[1])  # moved 256 px: outside the search window
    assert first.found and not first.extra["tracked"] and "search" not in first.extra
    assert far.found and not far.extra["tracked"] and "search" in far.extra
    assert tracker.fallbacks == 1
    assert geometry.iou(far.mask, clip.truth_mask(1)) >= 0.9
    near = tracker.step(clip.frames[1])  # same place again: found in the window
    assert near.extra["tracked"] and tracker.tracked == 1
    assert geometry.iou(near.mask, clip.truth_mask(1)) >= 0.9


def test_exception_frame_smaller_than_template_is_not_found(small_clip):
    tracker = video.VideoTracker(tmatch.load_matcher("ncc"), small_clip.template)
    m = tracker.step(np.zeros((50, 50, 3), np.uint8))
    assert not m.found and m.mask.shape == (50, 50) and "larger than the image" in m.extra["reason"]
    with pytest.raises(InputError):
        video.VideoTracker(tmatch.load_matcher("ncc"), small_clip.template, margin=-1)
