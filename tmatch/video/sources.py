"""Frame sources: a video file, a live camera, a folder of frames, frames in memory.

:func:`open_source` picks one; each yields :class:`Frame` records, unreadable frames with
``image=None`` so that they are counted, not fatal. Shape letters: H×W frame.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import numpy as np

from tmatch import io
from tmatch.errors import InputError
from tmatch.video.checks import check_fps
from tmatch.video.formats import DEFAULT_FPS, IMAGE_SUFFIXES, quiet_native_stderr


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
    if fps is not None:
        fps = check_fps(fps)
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
