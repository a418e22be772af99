"""Find a template in every frame of a video file, a camera or a folder of frames.

The template's work is done once (:meth:`Matcher.prepare`); every frame is then matched with the
prepared template, optionally near the last location first (``track=True``: a crop around the
last box, enlarged, with the result mapped back; the whole frame when the crop finds nothing).
Results go to an annotated video, to JSON lines (one per matched frame, flushed at once) and,
when a display exists, to a live window.

Pieces, each usable alone:

- sources: :func:`open_source` → :class:`FrameSource` yielding :class:`Frame` records
  (unreadable frames come through with ``image=None`` so they are counted, not fatal);
- :class:`VideoTracker`: the prepared template plus the temporal prior, one
  :meth:`~VideoTracker.step` per frame;
- sinks: :class:`VideoSink` (codec choice and fall-back, fixed output size, optional segments that
  survive a SIGKILL) and :class:`JsonlSink`;
- :func:`run_video`: the loop tying them together, stopping cleanly on ``q``, Ctrl-C or SIGTERM;
- :func:`synthetic_clip`: a real photo's cut-out moving, scaling and rotating over another real
  photo, with the true polygon of every frame (tests and benchmarks use it).

Shape letters: H×W frame, h×w template, N frames.

>>> import tmatch
>>> clip = synthetic_clip(n_frames=3, size=(240, 320))
>>> tracker = VideoTracker(tmatch.load_matcher("sift"), clip.template)
>>> summary = run_video(open_source(clip.frames), tracker)
>>> summary.frames_matched, summary.frames_found
(3, 3)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from tmatch import geometry, io
from tmatch.errors import InputError, TmatchError
from tmatch.match import Match

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                  ".flv", ".3gp", ".ts", ".mts", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".jp2", ".exr", ".hdr")
#: codecs tried, in order, for each output suffix (``codec="auto"``): H.264 when this OpenCV build
#: can encode it, else MPEG-4 Part 2 (``mp4v``, plays in VLC, ffmpeg, browsers' fallbacks...).
CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".mkv": ("avc1", "mp4v", "MJPG"),
    ".avi": ("MJPG", "XVID", "mp4v"),
}
LAYOUTS = ("overlay", "panels")
DEFAULT_FPS = 25.0


# ============================================================================ sources
@dataclass
class Frame:
    """One position of a source.

    Attributes:
        index: position in the source, 0-based (unreadable frames keep their index).
        time: seconds from the start (``index / fps`` for files and folders; wall clock for a
            camera).
        image: ``(H, W, 3)`` RGB uint8, or ``None`` when the frame could not be read.
        name: the file name for a folder of frames, else ``""``.
    """

    index: int
    time: float
    image: np.ndarray | None
    name: str = ""


class FrameSource:
    """Frames from somewhere; iterate it for :class:`Frame` records. Use as a context manager.

    Attributes:
        kind: ``"file"``, ``"camera"``, ``"folder"`` or ``"memory"``.
        name: what to call it in messages.
        fps: frames per second (the source's own, or the one given, or 25).
        frame_hw: ``(H, W)`` of the first readable frame.
        frame_count: number of frames when known in advance, else ``None``.
    """

    kind: str = ""

    def __init__(self, name: str, fps: float, frame_hw: tuple[int, int], frame_count: int | None):
        self.name = name
        self.fps = float(fps)
        self.frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
        self.frame_count = frame_count

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def frame(self, index: int) -> np.ndarray:
        """The readable frame at ``index`` as ``(H, W, 3)`` RGB (a camera consumes frames to get
        there). Raises :class:`InputError` when there is none."""
        if index < 0:
            raise InputError(f"frame index must be >= 0, got {index}")
        for f in self:
            if f.index == index:
                if f.image is None:
                    raise InputError(f"frame {index} of {self.name} cannot be read")
                return f.image
            if f.index > index:
                break
        raise InputError(f"{self.name} has no frame {index}")

    def close(self) -> None:
        """Release what the source holds (cameras, decoders)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.frame_hw
        n = "?" if self.frame_count is None else self.frame_count
        return f"{type(self).__name__}({self.name!r}, {w}x{h}, {self.fps:g} fps, {n} frames)"


def _sane_fps(value: float, default: float = DEFAULT_FPS) -> float:
    return float(value) if np.isfinite(value) and 0.5 <= value <= 1000 else float(default)


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return np.ascontiguousarray(np.repeat(frame[:, :, None], 3, axis=2))
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class VideoFileSource(FrameSource):
    """Frames of a video file decoded by OpenCV (FFmpeg).

    A read that fails while later ones succeed is a corrupt frame (yielded with ``image=None``);
    failures at the end are the end. ``max_bad`` consecutive failures end the stream.
    """

    kind = "file"

    def __init__(self, path: str | os.PathLike, fps: float | None = None, max_bad: int = 30):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"video file not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise InputError(f"video file is empty: {self.path}")
        cap = self._open()
        try:
            ok, first = cap.read()
            if not ok or first is None:
                raise InputError(f"cannot decode any frame of {self.path} (unsupported codec, "
                                 "or a corrupt or truncated file)")
            own_fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        self.max_bad = int(max_bad)
        super().__init__(str(self.path), fps or _sane_fps(own_fps), first.shape[:2],
                         count if count > 0 else None)

    def _open(self) -> cv2.VideoCapture:
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
            if not cap.isOpened():
                cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise InputError(f"cannot open video {self.path}: not a video, or a container/codec "
                             "this OpenCV build cannot decode")
        return cap

    def __iter__(self) -> Iterator[Frame]:
        cap = self._open()
        try:
            index, pending = 0, 0
            while True:
                with quiet_native_stderr():
                    ok, img = cap.read()
                if not ok or img is None:
                    pending += 1
                    if pending >= self.max_bad:
                        return
                    if self.frame_count is not None and index + pending > self.frame_count + 1:
                        return
                    continue
                for _ in range(pending):  # failures followed by a good frame: corrupt frames
                    yield Frame(index, index / self.fps, None)
                    index += 1
                pending = 0
                yield Frame(index, index / self.fps, _bgr_to_rgb(img))
                index += 1
        finally:
            cap.release()


class CameraSource(FrameSource):
    """Frames of a live camera (``cv2.VideoCapture(index)``); time stamps are wall-clock seconds
    since the first frame. Iterating again continues the same stream. Failed reads followed by
    a good one are dropped frames (``image=None``); ``max_bad`` failures in a row end it."""

    kind = "camera"

    def __init__(self, index: int, fps: float | None = None, max_bad: int = 50):
        self.index = int(index)
        with quiet_native_stderr():
            cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise InputError(f"cannot open camera {self.index} (no such device, or it is busy)")
        first = None
        for _ in range(20):  # cameras may need a few reads to warm up
            ok, img = cap.read()
            if ok and img is not None:
                first = img
                break
            time.sleep(0.05)
        if first is None:
            cap.release()
            raise InputError(f"camera {self.index} opened but delivers no frames")
        self._cap = cap
        self._first: np.ndarray | None = first
        self.max_bad = int(max_bad)
        self._index = 0
        self._t0: float | None = None
        self._pushed: Frame | None = None
        super().__init__(f"camera {self.index}", fps or _sane_fps(cap.get(cv2.CAP_PROP_FPS), 30.0),
                         first.shape[:2], None)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the live stream (earlier ones are dropped); iterating afterwards
        starts with that same frame."""
        if index < self._index:
            raise InputError(f"{self.name} is past frame {index} (at frame {self._index})")
        for f in self:
            if f.index == index and f.image is not None:
                self._pushed = f
                return f.image
            if f.index >= index:
                raise InputError(f"frame {index} of {self.name} could not be read")
        raise InputError(f"{self.name} stopped before frame {index}")

    def __iter__(self) -> Iterator[Frame]:
        if self._pushed is not None:
            f, self._pushed = self._pushed, None
            yield f
        bad = 0
        while self._cap is not None:
            if self._first is not None:
                img, self._first = self._first, None
            else:
                ok, img = self._cap.read()
                if not ok or img is None:
                    bad += 1
                    if bad >= self.max_bad:
                        return  # the camera is gone: trailing failures are not frames
                    continue
            now = self._now()
            for _ in range(bad):  # failed reads between good frames: dropped frames
                yield Frame(self._index, now, None)
                self._index += 1
            bad = 0
            f = Frame(self._index, now, _bgr_to_rgb(img))
            self._index += 1
            yield f

    def _now(self) -> float:
        t = time.monotonic()
        if self._t0 is None:
            self._t0 = t
        return t - self._t0

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


class FolderSource(FrameSource):
    """Image files of a folder in natural order (``frame2`` before ``frame10``); files that are
    not images (by suffix) are ignored, images that cannot be read are corrupt frames."""

    kind = "folder"

    def __init__(self, path: str | os.PathLike, fps: float | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"not a folder: {self.path}")
        files = [p for p in self.path.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        self.files = sorted(files, key=_natural_key)
        if not self.files:
            raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES[:5])}...) "
                             f"in folder {self.path}")
        first = None
        for p in self.files:
            first = self._read(p)
            if first is not None:
                break
        if first is None:
            raise InputError(f"none of the {len(self.files)} image files in {self.path} "
                             "can be read")
        super().__init__(str(self.path), fps or DEFAULT_FPS, first.shape[:2], len(self.files))

    @staticmethod
    def _read(p: Path) -> np.ndarray | None:
        try:
            return io.read_image(p, "frame")
        except (InputError, OSError):
            return None  # corrupt, or gone since the folder was listed

    def __iter__(self) -> Iterator[Frame]:
        for i, p in enumerate(self.files):
            yield Frame(i, i / self.fps, self._read(p), p.name)

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self.files):
            raise InputError(f"{self.name} has {len(self.files)} frames; no frame {index}")
        img = self._read(self.files[index])
        if img is None:
            raise InputError(f"frame {index} ({self.files[index].name}) cannot be read")
        return img


class ArraySource(FrameSource):
    """Frames already in memory: a sequence of ``(H, W, 3)`` RGB arrays (``None`` = corrupt)."""

    kind = "memory"

    def __init__(self, frames: Sequence[np.ndarray | None], fps: float | None = None,
                 name: str = "frames"):
        self.frames = list(frames)
        first = next((f for f in self.frames if f is not None), None)
        if first is None:
            raise InputError("no frames given")
        super().__init__(name, fps or DEFAULT_FPS, np.asarray(first).shape[:2], len(self.frames))

    def __iter__(self) -> Iterator[Frame]:
        for i, f in enumerate(self.frames):
            img = None
            if f is not None:
                try:
                    img = io.as_rgb(np.asarray(f), f"frame {i}")
                except InputError:
                    img = None
            yield Frame(i, i / self.fps, img)


def open_source(source: str | os.PathLike | int | Sequence[np.ndarray], fps: float | None = None
                ) -> FrameSource:
    """Open a video file, a folder of frames, a camera (an ``int`` index) or in-memory frames.

    Args:
        source: path to a video file or folder, camera index, or a sequence of ``(H, W, 3)``
            RGB frames.
        fps: frame rate to assume (folders and in-memory frames default to 25; files and
            cameras report their own unless this is given).

    Raises:
        InputError: missing path, unreadable video (unsupported codec, truncated file), empty
            folder, camera that cannot be opened.

    >>> import numpy as np
    >>> open_source([np.zeros((4, 6, 3), np.uint8)] * 2).frame_hw
    (4, 6)
    """
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be > 0, got {fps}")
    if isinstance(source, (bool, np.bool_)):
        raise InputError(f"not a video source: {source!r}")
    if isinstance(source, (int, np.integer)):
        return CameraSource(int(source), fps)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"video source not found: {path}")
        if path.is_dir():
            return FolderSource(path, fps)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise InputError(f"{path} is an image, not a video: give a video file or a folder of "
                             "frames (or use `tmatch match` for one image)")
        return VideoFileSource(path, fps)
    if isinstance(source, np.ndarray) and source.ndim == 3:
        raise InputError("one image is not a video; give a sequence of frames (N, H, W, 3)")
    return ArraySource(source, fps)


# ============================================================================ display
def display_problem() -> str | None:
    """Why windows cannot be opened here (``None`` when they can): a headless OpenCV build, or
    no display server."""
    info = cv2.getBuildInformation()
    m = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    if m is not None and m.group(1).upper() == "NONE":
        return ("this OpenCV build has no GUI support (opencv-python-headless); "
                "install opencv-python instead to use --show or --select")
    has_server = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not has_server:
        return "no display (DISPLAY is not set); run on a desktop or use --roi"
    return None


def select_roi(image: np.ndarray, title: str = "select the template, then ENTER"
               ) -> tuple[int, int, int, int]:
    """Let the user draw the template on ``image`` ``(H, W, 3)`` with the mouse.

    Returns:
        ``(x, y, w, h)``.

    Raises:
        InputError: no display here, or nothing selected.
    """
    problem = display_problem()
    if problem:
        raise InputError(f"cannot select with the mouse: {problem}")
    x, y, w, h = cv2.selectROI(title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), True, False)
    cv2.destroyWindow(title)
    if w <= 0 or h <= 0:
        raise InputError("no region selected")
    return int(x), int(y), int(w), int(h)


class _Window:
    """A live window; :meth:`show` returns False once ``q`` or Esc is pressed."""

    def __init__(self, title: str = "tmatch video (q to quit)"):
        problem = display_problem()
        if problem:
            raise InputError(f"cannot show a live window: {problem}")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, rgb: np.ndarray) -> bool:
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), ord("Q"), 27)

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


# ============================================================================ tracking
def search_window(box: tuple[int, int, int, int], image_hw: tuple[int, int],
                  template_hw: tuple[int, int], margin: float = 0.5,
                  max_fraction: float = 0.7, snap: int = 32,
                  size: tuple[int, int] | None = None) -> tuple[int, int, int, int] | None:
    """The region searched first when the template was last seen at ``box``.

    The box grown by ``margin`` times its size on every side (and never smaller than the
    template ``(h, w)``), its sides rounded up to multiples of ``snap`` pixels, shifted to lie
    inside the ``(H, W)`` image. Snapping keeps the number of distinct window sizes small, which
    matters to matchers that prepare the template once per search-image size (the neural ones).
    ``None`` when the window would cover more than ``max_fraction`` of the image (then the whole
    frame is as cheap). ``size = (h, w)`` imposes the window's size instead.

    >>> search_window((100, 100, 20, 10), (480, 640), (10, 20))
    (78, 89, 64, 32)
    """
    x, y, w, h = (float(v) for v in box)
    H, W = int(image_hw[0]), int(image_hw[1])
    th, tw = int(template_hw[0]), int(template_hw[1])
    step = max(1, int(snap))
    if size is not None:
        wh, ww = min(H, int(size[0])), min(W, int(size[1]))
    else:
        ww = min(W, int(np.ceil(max(w * (1 + 2 * margin), tw) / step)) * step)
        wh = min(H, int(np.ceil(max(h * (1 + 2 * margin), th) / step)) * step)
    if ww * wh > max_fraction * W * H:
        return None
    cx, cy = x + w / 2, y + h / 2
    x0 = int(np.clip(round(cx - ww / 2), 0, W - ww))
    y0 = int(np.clip(round(cy - wh / 2), 0, H - wh))
    return x0, y0, ww, wh


def shift_match(m: Match, offset: tuple[int, int], image_hw: tuple[int, int]) -> Match:
    """A match found in a crop at ``offset = (x0, y0)``, expressed in the full ``(H, W)`` image.

    The crop's mask is pasted in place, except when a homography's polygon reaches past the
    crop: then the mask is redrawn from the shifted polygon.
    """
    x0, y0 = int(offset[0]), int(offset[1])
    H, W = int(image_hw[0]), int(image_hw[1])
    if not m.found:
        return Match.absent((H, W), score=m.score, method=m.method, **m.extra)
    t = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    poly = None if m.polygon is None else np.asarray(m.polygon, np.float64) + [x0, y0]
    hm = None if m.homography is None else t @ np.asarray(m.homography, np.float64)
    ch, cw = m.mask.shape
    inside = m.polygon is not None and np.all(np.asarray(m.polygon) >= 0) \
        and np.all(np.asarray(m.polygon) <= [cw, ch])
    if poly is not None and hm is not None and not inside:
        # The polygon reaches past the crop: its mask there was clipped, draw it again.
        mask = geometry.mask_from_polygon(poly, (H, W))
        box = geometry.box_from_polygon(poly, (H, W))
    else:
        mask = np.zeros((H, W), bool)
        mask[y0:y0 + ch, x0:x0 + cw] = m.mask[:H - y0, :W - x0]
        box = None if m.box is None else (m.box[0] + x0, m.box[1] + y0, m.box[2], m.box[3])
    return Match(found=True, score=m.score, polygon=poly, box=box, mask=mask, homography=hm,
                 ms=m.ms, method=m.method, extra=dict(m.extra))


class VideoTracker:
    """A matcher with its template prepared once, matched frame after frame.

    Args:
        matcher: any registered matcher (``tmatch.load_matcher(name)``).
        template: ``(h, w, 3)`` RGB uint8 (or a path).
        track: search a window around the last box first, and the whole frame when the window
            gives nothing.
        margin: the window is the last box grown by ``margin`` × its size on each side.
        keep_score: a result from the window is kept only when it scores at least this
            fraction of the last found score and its geometry is plausible (a convex,
            unmirrored quad of sane scale); otherwise the whole frame is searched.

    Attributes:
        prepare_ms: time spent preparing the template (once).
        tracked: frames found inside the search window.
        fallbacks: frames where the window found nothing and the whole frame was searched.

    >>> import numpy as np, tmatch
    >>> img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    >>> t = VideoTracker(tmatch.load_matcher("ncc"), img[10:30, 20:50], track=True)
    >>> first, second = t.step(img), t.step(img)
    >>> first.box, first.extra["tracked"], second.box, second.extra["tracked"]
    ((20, 10, 30, 20), False, (20, 10, 30, 20), True)
    """

    def __init__(self, matcher: Any, template: io.ImageLike, track: bool = False,
                 margin: float = 0.5, keep_score: float = 0.5):
        if margin < 0:
            raise InputError(f"track margin must be >= 0, got {margin}")
        if not 0 <= keep_score <= 1:
            raise InputError(f"keep_score must be in [0, 1], got {keep_score}")
        self.matcher = matcher
        self.template = io.read_image(template, "template")
        io.check_pair(self.template, self.template)
        self.track = bool(track)
        self.margin = float(margin)
        self.keep_score = float(keep_score)
        t0 = time.perf_counter()
        self.prepared = matcher.prepare(self.template)
        self.prepare_ms = (time.perf_counter() - t0) * 1000.0
        self.tracked = 0
        self.fallbacks = 0
        self._last_box: tuple[int, int, int, int] | None = None
        self._last_hw: tuple[int, int] | None = None
        self._last_score = 0.0
        self._window_hw: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return getattr(self.matcher, "name", type(self.matcher).__name__)

    def reset(self) -> None:
        """Forget the last location (the next frame is searched whole)."""
        self._last_box, self._last_score, self._window_hw = None, 0.0, None

    def _match(self, image: np.ndarray) -> Match:
        # The matcher's per-image hook with the prepared template (what match_many does).
        return self.matcher.match_prepared(self.prepared, self.template, image)

    def _window(self, image_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The search window; its size is kept while the object's size barely changes, so that
        matchers preparing the template per search size (neural ones) reuse that work."""
        assert self._last_box is not None
        tpl_hw = self.template.shape[:2]
        window = search_window(self._last_box, image_hw, tpl_hw, self.margin)
        if window is not None and self._window_hw is not None:
            ph, pw = self._window_hw
            if 0.75 * pw <= window[2] <= pw and 0.75 * ph <= window[3] <= ph:
                window = search_window(self._last_box, image_hw, tpl_hw, self.margin, size=(ph, pw))
        if window is not None:
            self._window_hw = (window[3], window[2])
        return window

    def _credible(self, m: Match, window_hw: tuple[int, int]) -> bool:
        """Whether a result found in the search window can be trusted without a full search."""
        if not m.found or m.box is None or m.box[2] <= 0 or m.box[3] <= 0:
            return False
        if m.score < self.keep_score * self._last_score:
            return False
        if m.homography is not None:
            return geometry.plausible_homography(m.homography, self.template.shape[:2], window_hw)
        return True

    def step(self, image: np.ndarray) -> Match:
        """Match the prepared template in one frame ``(H, W, 3)`` RGB uint8.

        A frame smaller than the template gives ``found=False`` with ``extra["error"]``.
        """
        t0 = time.perf_counter()
        hw = image.shape[:2]
        if hw != self._last_hw:
            self._last_box, self._last_hw = None, hw
        try:
            io.check_pair(self.template, image)
        except InputError as e:
            m = Match.absent(hw, method=self.name, error=str(e))
            m.ms = (time.perf_counter() - t0) * 1000.0
            return m
        m = None
        window = None
        if self.track and self._last_box is not None:
            window = self._window(hw)
        if window is not None:
            x, y, w, h = window
            local = self._match(np.ascontiguousarray(image[y:y + h, x:x + w]))
            if self._credible(local, (h, w)):
                m = shift_match(local, (x, y), hw)
                self.tracked += 1
            else:
                self.fallbacks += 1
        from_window = m is not None
        if m is None:
            m = self._match(image)
        if self.track:
            m.extra["tracked"] = from_window
            if window is not None:
                m.extra["search"] = list(window)
        ok_box = m.found and m.box is not None and m.box[2] > 0 and m.box[3] > 0
        self._last_box = m.box if ok_box else None
        self._last_score = float(m.score) if ok_box else 0.0
        m.ms = (time.perf_counter() - t0) * 1000.0
        m.method = m.method or self.name
        return m


# ============================================================================ sinks
@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native code (FFmpeg, OpenCV's logger) prints on file descriptor 2 while
    probing codecs and devices; Python's own ``sys.stderr`` is flushed first and restored."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _open_writer(path: Path, fourcc: str, fps: float, hw: tuple[int, int]
                 ) -> cv2.VideoWriter | None:
    size = (int(hw[1]), int(hw[0]))
    with quiet_native_stderr():
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
    if w.isOpened():
        return w
    w.release()
    return None


def codec_candidates(path: str | os.PathLike, codec: str = "auto") -> tuple[str, ...]:
    """FourCCs to try for ``path``: ``CODECS[suffix]`` for ``"auto"``, else just ``codec``.

    >>> codec_candidates("out.mp4")
    ('avc1', 'mp4v')
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        raise InputError(f"cannot write video {Path(path).name!r}: use one of "
                         f"{', '.join(CODECS)} as the suffix")
    if codec in ("", "auto", None):
        return CODECS[suffix]
    if len(codec) != 4:
        raise InputError(f"codec must be 'auto' or a four-character code like mp4v, got {codec!r}")
    return (codec,)


class VideoSink:
    """Write RGB frames to a video file at a fixed size and frame rate.

    The writer opens on the first frame, whose size (made even, as encoders need) fixes the
    output size: later frames of another size are resized to it (counted in ``resized``).

    Args:
        path: output file; the suffix picks the container (``.mp4``, ``.avi``, ``.mkv``...).
        fps: frames per second.
        codec: ``"auto"`` (H.264 ``avc1`` when available, else ``mp4v`` for MP4; ``MJPG`` for
            AVI) or a FourCC.
        segment_frames: when > 0, write ``OUT.part000.mp4``, ``OUT.part001.mp4``... each closed
            after this many frames, so that all but the last survive a SIGKILL; :meth:`close`
            joins them into ``path`` and deletes them.

    Raises:
        TmatchError: no codec for this container can be opened.
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "auto",
                 segment_frames: int = 0):
        self.path = Path(path)
        self.candidates = codec_candidates(self.path, codec)
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.segment_frames = max(0, int(segment_frames))
        self.codec: str | None = None
        self.frame_hw: tuple[int, int] | None = None
        self.frames_written = 0
        self.resized = 0
        self.parts: list[Path] = []
        self._first_hw: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self._in_part = 0
        self._closed = False

    def _part_path(self, k: int) -> Path:
        return self.path.with_name(f"{self.path.stem}.part{k:03d}{self.path.suffix}")

    def _open(self, target: Path) -> cv2.VideoWriter:
        target.parent.mkdir(parents=True, exist_ok=True)
        assert self.frame_hw is not None
        tried = [self.codec] if self.codec else list(self.candidates)
        for cc in tried:
            w = _open_writer(target, cc, self.fps, self.frame_hw)
            if w is not None:
                self.codec = cc
                return w
        h, w_ = self.frame_hw
        raise TmatchError(f"cannot write {target.suffix} video {target}: no codec among "
                          f"{', '.join(tried)} works in this OpenCV build at {w_}x{h} "
                          "(try --codec mp4v, or an .avi output)")

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` RGB uint8 frame."""
        if self._closed:
            raise TmatchError(f"video {self.path} is already closed")
        hw = rgb.shape[:2]
        if self.frame_hw is None:
            self._first_hw = hw
            self.frame_hw = (max(2, hw[0] - hw[0] % 2), max(2, hw[1] - hw[1] % 2))
        H, W = self.frame_hw
        if hw == self._first_hw:
            img = rgb[:H, :W]
        else:
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA)
            self.resized += 1
        if img.shape[:2] != (H, W):  # first frame smaller than 2 px on a side
            img = cv2.resize(rgb, (W, H), interpolation=cv2.INTER_NEAREST)
        part_full = self.segment_frames and self._in_part >= self.segment_frames
        if self._writer is not None and part_full:
            self._writer.release()
            self._writer = None
        if self._writer is None:
            if self.segment_frames:
                part = self._part_path(len(self.parts))
                self._writer = self._open(part)
                self.parts.append(part)
            else:
                self._writer = self._open(self.path)
            self._in_part = 0
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
        self._in_part += 1
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (an MP4 is only playable once closed); join segments if any."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.parts:
            self._join()

    def _join(self) -> None:
        out = self._open(self.path)
        try:
            for part in self.parts:
                cap = cv2.VideoCapture(str(part))
                while True:
                    ok, img = cap.read()
                    if not ok:
                        break
                    out.write(img)
                cap.release()
        finally:
            out.release()
        for part in self.parts:
            with contextlib.suppress(OSError):
                part.unlink()
        self.parts = []

    def __enter__(self) -> "VideoSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class JsonlSink:
    """One JSON object per line, flushed as soon as written, so a killed run leaves every line
    up to the last frame complete."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"JSON lines path is a folder: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._f.flush()
        self.lines += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "JsonlSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def frame_record(frame: Frame, match: Match) -> dict[str, Any]:
    """The JSON line of one matched frame: ``index``, ``time`` (s), ``file`` (folders), then
    :meth:`Match.to_dict` (found, score, polygon, box, COCO RLE mask, homography, ms...)."""
    rec: dict[str, Any] = {"index": int(frame.index), "time": round(float(frame.time), 4)}
    if frame.name:
        rec["file"] = frame.name
    rec.update(match.to_dict())
    return rec


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSON lines file; a last line cut short (a run killed mid-write) is dropped.

    Raises:
        DataError: the file is missing, or a line other than the last is not JSON.
    """
    from tmatch.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"JSON lines file not found: {p}")
    lines = p.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise DataError(f"{p}:{i + 1} is not valid JSON") from None
    return out


# ============================================================================ the loop
def render_frame(image: np.ndarray, match: Match | None, template: np.ndarray,
                 layout: str = "overlay", fps: float | None = None, label: str | None = None,
                 panel_height: int | None = None) -> np.ndarray:
    """The picture written for one frame.

    Args:
        image: ``(H, W, 3)`` RGB frame.
        match: its result (or the last one, for frames skipped by ``every``), ``None`` for none.
        template: ``(h, w, 3)`` RGB.
        layout: ``"overlay"`` (the frame with mask tint, polygon, score, FPS: ``(H, W, 3)``) or
            ``"panels"`` (query | frame | mask | overlay side by side, ``panel_height`` high,
            default ``min(H, 360)``).
    """
    from tmatch import viz

    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    ov = viz.overlay(image, [] if match is None else match, label=label, fps=fps)
    if layout == "overlay":
        return ov
    hw = image.shape[:2]
    mask = match.mask if (match is not None and match.found and match.mask.shape == hw) \
        else np.zeros(hw, bool)
    height = int(panel_height or min(hw[0], 360))
    titles = ["query", "frame", "mask", "overlay"]
    return viz.panel([template, image, mask, ov], titles, height=height)


@dataclass
class FrameResult:
    """What :func:`run_video` hands to its ``on_frame`` callback after each frame.

    Attributes:
        frame: the frame (its image included).
        match: this frame's result, or ``None`` when ``every`` skipped it.
        fps: frames handled per second over the last 30 frames (``None`` at first).
    """

    frame: Frame
    match: Match | None
    fps: float | None


@dataclass
class VideoSummary:
    """How a :func:`run_video` run went.

    Attributes:
        source: the source's name.
        frames_read: readable frames taken from the source.
        frames_matched: frames the template was searched in (``every`` skips the others).
        frames_found: matched frames where it was found.
        frames_corrupt: unreadable frames, skipped.
        frames_written: frames written to the video.
        frames_resized: frames of another size than the first, resized for the video.
        tracked: frames found inside the search window (``track``).
        seconds: wall time of the loop.
        fps: frames matched per second of wall time.
        prepare_ms: the template's one-time preparation.
        stopped: why it ended: ``end``, ``max-frames``, ``quit`` (window), ``callback``,
            ``SIGINT`` or ``SIGTERM``.
        video: the video written, if any; ``codec`` its FourCC.
        jsonl: the JSON lines file, if any.
        segments: video parts left on disk (only if joining them failed).
    """

    source: str
    frames_read: int = 0
    frames_matched: int = 0
    frames_found: int = 0
    frames_corrupt: int = 0
    frames_written: int = 0
    frames_resized: int = 0
    tracked: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    prepare_ms: float = 0.0
    stopped: str = "end"
    video: Path | None = None
    codec: str | None = None
    jsonl: Path | None = None
    segments: list[Path] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal (Ctrl-C, SIGTERM)."""
        return self.stopped in ("SIGINT", "SIGTERM")

    def line(self) -> str:
        """One human-readable line."""
        parts = [f"{self.frames_matched} frame(s) matched, found in {self.frames_found}",
                 f"{self.fps:.1f} FPS"]
        if self.frames_corrupt:
            parts.append(f"{self.frames_corrupt} corrupt frame(s) skipped")
        if self.frames_resized:
            parts.append(f"{self.frames_resized} frame(s) resized")
        if self.tracked:
            parts.append(f"{self.tracked} found near the last location")
        if self.video is not None:
            parts.append(f"video {self.video} ({self.frames_written} frames, {self.codec})")
        if self.jsonl is not None:
            parts.append(f"JSON lines {self.jsonl}")
        if self.stopped != "end":
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)


class _StopSignals:
    """While active (main thread only): the first SIGINT/SIGTERM asks the loop to stop after the
    current frame; a second one interrupts at once, except while outputs are being closed."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.closing = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.reason is None:
            self.reason = signal.Signals(signum).name
        elif not self.closing:
            raise KeyboardInterrupt

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
                if sig is not None:
                    with contextlib.suppress(ValueError, OSError):
                        self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)
        self._old.clear()


def run_video(source: FrameSource, tracker: VideoTracker, *, out: str | os.PathLike | None = None,
              jsonl: str | os.PathLike | None = None, every: int = 1, layout: str = "overlay",
              show: bool = False, codec: str = "auto", segment_seconds: float = 0.0,
              max_frames: int | None = None, label: str | None = None,
              panel_height: int | None = None,
              on_frame: Callable[[FrameResult], bool | None] | None = None) -> VideoSummary:
    """Match the tracker's template in every frame of ``source`` and write the results.

    Args:
        source: from :func:`open_source`.
        tracker: the prepared template and matcher (:class:`VideoTracker`).
        out: annotated video to write (every readable frame, at the source's frame rate and
            the first frame's size; frames skipped by ``every`` show the last result).
        jsonl: JSON lines to write, one per matched frame (:func:`frame_record`), flushed
            per frame.
        every: match one frame in ``every``.
        layout: ``"overlay"`` or ``"panels"`` (query | frame | mask | overlay).
        show: live window (``q`` or Esc quits); refused without a display.
        codec: ``"auto"`` or a FourCC for ``out``.
        segment_seconds: write ``out`` in parts of this length that survive a SIGKILL (joined
            at the end); 0 writes one file.
        max_frames: stop after this many readable frames.
        label: text written at the bottom of each picture (default: the matcher's name).
        on_frame: called after each frame with a :class:`FrameResult`; returning ``False``
            stops the run.

    Returns:
        a :class:`VideoSummary`. Ctrl-C and SIGTERM stop the loop after the current frame and
        still close the video and the JSON lines, which stay valid.
    """
    if int(every) < 1:
        raise InputError(f"--every must be >= 1, got {every}")
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"max frames must be >= 1, got {max_frames}")
    if segment_seconds < 0:
        raise InputError(f"segment length must be >= 0 seconds, got {segment_seconds}")
    every = int(every)
    label = tracker.name if label is None else label
    summary = VideoSummary(source=source.name, prepare_ms=tracker.prepare_ms)
    segment_frames = int(round(segment_seconds * source.fps)) if segment_seconds > 0 else 0
    if segment_seconds > 0:
        segment_frames = max(1, segment_frames)
    sink = VideoSink(out, source.fps, codec, segment_frames) if out is not None else None
    window = _Window() if show else None
    lines = JsonlSink(jsonl) if jsonl is not None else None
    stamps: deque[float] = deque(maxlen=30)
    last: Match | None = None
    stop = _StopSignals()
    t_start = time.perf_counter()
    try:
        with stop:
            try:
                for frame in source:
                    if stop.reason is not None:
                        break
                    if frame.image is None:
                        summary.frames_corrupt += 1
                        continue
                    if max_frames is not None and summary.frames_read >= max_frames:
                        summary.stopped = "max-frames"
                        break
                    summary.frames_read += 1
                    mine: Match | None = None
                    if (summary.frames_read - 1) % every == 0:
                        mine = last = tracker.step(frame.image)
                        summary.frames_matched += 1
                        summary.frames_found += int(mine.found)
                        if lines is not None:
                            lines.write(frame_record(frame, mine))
                    stamps.append(time.perf_counter())
                    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) \
                        if len(stamps) > 1 and stamps[-1] > stamps[0] else None
                    if sink is not None or window is not None:
                        pic = render_frame(frame.image, last, tracker.template, layout, fps,
                                           label if mine is not None else f"{label} (held)",
                                           panel_height)
                        if sink is not None:
                            sink.write(pic)
                        if window is not None and not window.show(pic):
                            summary.stopped = "quit"
                            break
                    if on_frame is not None and on_frame(FrameResult(frame, mine, fps)) is False:
                        summary.stopped = "callback"
                        break
            except KeyboardInterrupt:
                stop.reason = stop.reason or "SIGINT"
            finally:
                stop.closing = True
                if stop.reason is not None:
                    summary.stopped = stop.reason
                summary.seconds = time.perf_counter() - t_start
                if lines is not None:
                    lines.close()
                if window is not None:
                    window.close()
                if sink is not None:
                    sink.close()
    finally:
        if lines is not None:
            lines.close()
    summary.fps = summary.frames_matched / summary.seconds if summary.seconds > 0 else 0.0
    summary.tracked = tracker.tracked
    if sink is not None:
        summary.video, summary.codec = sink.path, sink.codec
        summary.frames_written, summary.frames_resized = sink.frames_written, sink.resized
        summary.segments = list(sink.parts)
    if lines is not None:
        summary.jsonl = lines.path
    return summary


# ============================================================================ synthetic clips
@dataclass
class SyntheticClip:
    """A generated clip with its ground truth.

    Attributes:
        frames: N frames ``(H, W, 3)`` RGB uint8.
        polygons: ``(N, 4, 2)`` true corners TL, TR, BR, BL of the template in each frame.
        homographies: ``(N, 3, 3)`` template-to-frame homographies.
        template: ``(h, w, 3)`` the template as cut out.
        fps: frame rate to write it at.
    """

    frames: list[np.ndarray]
    polygons: np.ndarray
    homographies: np.ndarray
    template: np.ndarray
    fps: float = DEFAULT_FPS

    def __len__(self) -> int:
        return len(self.frames)

    def truth_mask(self, i: int) -> np.ndarray:
        """``(H, W)`` bool mask of the template in frame ``i``."""
        return geometry.mask_from_polygon(self.polygons[i], self.frames[i].shape[:2])


def _paste(template: np.ndarray, background: np.ndarray, hm: np.ndarray) -> np.ndarray:
    """``template`` warped by ``hm`` (our convention) onto ``background``, edges anti-aliased."""
    hw = background.shape[:2]
    warped = geometry.warp_image(template, hm, hw).astype(np.float32)
    alpha = geometry.warp_image(np.ones(template.shape[:2], np.float32), hm, hw)[:, :, None]
    out = background.astype(np.float32) * (1 - alpha) + warped * alpha
    return out


def synthetic_clip(n_frames: int = 30, size: tuple[int, int] = (480, 640),
                   template: np.ndarray | None = None, background: np.ndarray | None = None,
                   scale: tuple[float, float] = (0.6, 1.0), rotation: float = 30.0,
                   noise: float = 2.0, fps: float = DEFAULT_FPS, seed: int = 0) -> SyntheticClip:
    """A real photo's cut-out moving, scaling and rotating across another real photo.

    Defaults: the astronaut's helmet and face (``skimage.data.astronaut``, 200×200) over the
    coffee cup photo (``skimage.data.coffee``) resized to ``size``. Along the clip the cut-out
    travels left to right on a wave, its scale swings from ``scale[0]`` to ``scale[1]`` and
    back, and it turns between ±``rotation`` degrees; it always stays inside the frame.
    Gaussian sensor noise of ``noise`` grey levels is added.

    Args:
        n_frames: N.
        size: ``(H, W)`` of the frames.
        template: ``(h, w, 3)`` RGB cut-out (default above).
        background: RGB photo resized to ``size`` (default above).

    >>> clip = synthetic_clip(n_frames=4, size=(120, 160))
    >>> len(clip), clip.frames[0].shape, clip.polygons.shape
    (4, (120, 160, 3), (4, 4, 2))
    """
    from skimage import data as skdata

    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    H, W = int(size[0]), int(size[1])
    if H < 16 or W < 16:
        raise InputError(f"clip size must be at least 16x16, got {W}x{H}")
    if not 0 < scale[0] <= scale[1]:
        raise InputError(f"scale must be 0 < lo <= hi, got {scale}")
    if template is None:
        template = skdata.astronaut()[30:230, 150:350]  # helmet and face
    tpl = io.as_rgb(template, "template")
    bg = io.as_rgb(skdata.coffee() if background is None else background, "background")
    interp = cv2.INTER_AREA if bg.shape[0] > H else cv2.INTER_LINEAR
    bg = cv2.resize(bg, (W, H), interpolation=interp)
    h, w = tpl.shape[:2]
    # Largest scale and any angle keep the cut-out's diagonal inside 90% of the short side.
    fit = min(1.0, 0.9 * min(H, W) / (np.hypot(h, w) * scale[1]))
    rng = np.random.default_rng(seed)
    frames, polys, hms = [], [], []
    for i in range(n_frames):
        t = i / (n_frames - 1) if n_frames > 1 else 0.0
        s = fit * scale[0] * (scale[1] / scale[0]) ** (0.5 * (1 - np.cos(2 * np.pi * t)))
        a = np.deg2rad(rotation * np.sin(2 * np.pi * t))
        c, si = np.cos(a) * s, np.sin(a) * s
        centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
        core = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1.0]]) @ centre
        corners = geometry.template_polygon(core, (h, w))
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        cx = W * (0.3 + 0.4 * t)
        cy = H * (0.5 + 0.15 * np.sin(2 * np.pi * t))
        cx = float(np.clip(cx, 2 - lo[0], W - 2 - hi[0]))
        cy = float(np.clip(cy, 2 - lo[1], H - 2 - hi[1]))
        hm = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]]) @ core
        img = _paste(tpl, bg, hm)
        if noise > 0:
            img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
        frames.append(np.clip(img + 0.5, 0, 255).astype(np.uint8))
        polys.append(geometry.template_polygon(hm, (h, w)))
        hms.append(hm)
    return SyntheticClip(frames, np.array(polys), np.array(hms), tpl, float(fps))


def write_clip(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = DEFAULT_FPS,
               codec: str = "auto") -> Path:
    """Write RGB frames ``(H, W, 3)`` as a video (a suffix in :data:`CODECS`) or, for a path
    without a suffix, as a folder of ``frame_00000.png``... files. Returns the path."""
    p = Path(path)
    if p.suffix == "":
        p.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(frames):
            io.write_image(p / f"frame_{i:05d}.png", f)
        return p
    with VideoSink(p, fps, codec) as sink:
        for f in frames:
            sink.write(f)
    return p


def clip_ious(matches: Sequence[Match | None], clip: SyntheticClip) -> np.ndarray:
    """Mask IoU of each match with the clip's truth, ``(N,)`` (0 for missing or not found)."""
    out = np.zeros(len(clip), np.float64)
    for i, m in enumerate(matches[:len(clip)]):
        if m is not None and m.found and m.mask.shape == clip.frames[i].shape[:2]:
            out[i] = geometry.iou(m.mask, clip.truth_mask(i))
    return out
