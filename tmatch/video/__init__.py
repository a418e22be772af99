"""Find a template in every frame of a video file, a camera or a folder of frames.

The template's work is done once (:meth:`Matcher.prepare`); every frame is then matched with the
prepared template, optionally near the last location first (``track=True``: a crop around the
last box, enlarged, with the result mapped back; the whole frame when the crop finds nothing).
Results go to an annotated video, to JSON lines (one per matched frame) and, when a display
exists, to a live window. Every output file appears at its final name only when complete.

One module per piece, each usable alone:

- ``sources``: :func:`open_source` → :class:`FrameSource` yielding :class:`Frame` records
  (unreadable frames come through with ``image=None`` so they are counted, not fatal);
- ``tracker``: :class:`VideoTracker`, the prepared template plus the temporal prior, one
  :meth:`~VideoTracker.step` per frame;
- ``sinks``: :class:`VideoSink` (codec choice and fall-back, fixed output size, optional segments
  that survive a SIGKILL, :func:`join_parts`) and :class:`JsonlSink`;
- ``render``: :func:`render_frame`, the picture of one frame; ``display``: live windows;
- ``outputs``: files that appear at their final name only when complete (hidden staging
  names), leftover parts of a killed segmented run and :func:`join_parts`;
- ``checks``: numeric options and output paths judged before any work;
- ``formats``: video and image suffixes, codecs per container;
- ``loop``: :func:`run_video`, tying them together, stopping cleanly on ``q``, Ctrl-C or SIGTERM.

The synthetic clips (:func:`synthetic_clip`) live in :mod:`tmatch.data.clips`.

Shape letters: H×W frame, h×w template, N frames.

>>> import tmatch
>>> clip = synthetic_clip(n_frames=3, size=(240, 320))
>>> tracker = VideoTracker(tmatch.load_matcher("sift"), clip.template)
>>> summary = run_video(open_source(clip.frames), tracker)
>>> summary.frames_matched, summary.frames_found
(3, 3)
"""

from tmatch.data.clips import SyntheticClip, clip_ious, synthetic_clip
from tmatch.video.checks import check_outputs
from tmatch.video.display import display_problem, select_roi
from tmatch.video.formats import (
    CODECS,
    DEFAULT_FPS,
    IMAGE_SUFFIXES,
    LAYOUTS,
    VIDEO_SUFFIXES,
    codec_candidates,
    quiet_native_stderr,
)
from tmatch.video.loop import FrameResult, VideoSummary, run_video
from tmatch.video.outputs import join_parts, leftover_parts
from tmatch.video.render import render_frame
from tmatch.video.sinks import (
    JsonlSink,
    VideoSink,
    frame_record,
    read_jsonl,
    write_clip,
)
from tmatch.video.sources import (
    ArraySource,
    CameraSource,
    FolderSource,
    Frame,
    FrameSource,
    VideoFileSource,
    open_source,
)
from tmatch.video.tracker import VideoTracker, search_window, shift_match

__all__ = [
    "CODECS",
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "LAYOUTS",
    "VIDEO_SUFFIXES",
    "ArraySource",
    "CameraSource",
    "FolderSource",
    "Frame",
    "FrameResult",
    "FrameSource",
    "JsonlSink",
    "SyntheticClip",
    "VideoFileSource",
    "VideoSink",
    "VideoSummary",
    "VideoTracker",
    "check_outputs",
    "clip_ious",
    "codec_candidates",
    "display_problem",
    "frame_record",
    "join_parts",
    "leftover_parts",
    "open_source",
    "quiet_native_stderr",
    "read_jsonl",
    "render_frame",
    "run_video",
    "search_window",
    "select_roi",
    "shift_match",
    "synthetic_clip",
    "write_clip",
]
