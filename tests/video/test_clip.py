"""The generated clip: its ground truth is exact, and SIFT follows the cut-out through it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tmatch import geometry, video
from tmatch.errors import InputError


def _back_to_template(frame: np.ndarray, hm: np.ndarray, template_hw) -> np.ndarray:
    h, w = template_hw
    inv = geometry.to_cv_homography(np.linalg.inv(hm))
    return cv2.warpPerspective(frame, inv, (w, h), flags=cv2.INTER_LINEAR)


def test_feature_truth_homography_maps_template_onto_its_pixels(small_clip):
    tpl = small_clip.template.astype(np.float32)
    for i in (0, 5, 11):
        back = _back_to_template(small_clip.frames[i], small_clip.homographies[i], tpl.shape[:2])
        inner = (slice(6, -6), slice(6, -6))  # the warped border blends with the background
        err = np.abs(back[inner].astype(np.float32) - tpl[inner]).mean()
        assert err < 12, f"frame {i}: mean error {err:.1f} grey levels"
        # ...and the same place in the clean background would not match.
        shifted = small_clip.homographies[i].copy()
        shifted[0, 2] += 40
        other = _back_to_template(small_clip.frames[i], shifted, tpl.shape[:2])
        assert np.abs(other[inner].astype(np.float32) - tpl[inner]).mean() > 2 * err


def test_cardinality_clip_moves_scales_turns_inside_the_frame(small_clip):
    n = len(small_clip)
    assert n == 12 and small_clip.polygons.shape == (n, 4, 2)
    assert small_clip.homographies.shape == (n, 3, 3)
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in small_clip.frames)
    p = small_clip.polygons
    assert p.min() >= 0 and p[..., 0].max() <= 320 and p[..., 1].max() <= 240
    areas = [geometry.polygon_area(q) for q in p]
    assert max(areas) / min(areas) > 2.0  # scale swings 0.6 -> 1.0 -> 0.6
    edge = p[:, 1] - p[:, 0]
    angles = np.degrees(np.arctan2(edge[:, 1], edge[:, 0]))
    assert angles.max() - angles.min() > 40
    centres = p.mean(axis=1)
    assert centres[-1, 0] - centres[0, 0] > 60  # travels left to right
    assert small_clip.truth_mask(0).sum() == pytest.approx(areas[0], rel=0.05)


def test_exception_bad_clip_arguments():
    with pytest.raises(InputError):
        video.synthetic_clip(n_frames=0)
    with pytest.raises(InputError):
        video.synthetic_clip(size=(8, 8))


@pytest.mark.parametrize("track", [False, True])
def test_feature_sift_finds_the_cut_out_in_most_frames(track):
    clip = video.synthetic_clip(n_frames=12, size=(480, 640), seed=3)
    tracker = video.VideoTracker(tmatch.load_matcher("sift"), clip.template, track=track)
    matches = []
    summary = video.run_video(video.open_source(clip.frames), tracker,
                              on_frame=lambda r: matches.append(r.match))
    ious = video.clip_ious(matches, clip)
    assert summary.frames_matched == 12 and len(matches) == 12
    assert (ious >= 0.8).mean() >= 0.9, np.round(ious, 2)
    assert np.median(ious) >= 0.9
    if track:
        assert summary.tracked >= 6  # most frames were found near the last location
        assert all("tracked" in m.extra for m in matches)
