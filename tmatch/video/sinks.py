"""Where results go: an annotated video (:class:`VideoSink`), JSON lines (:class:`JsonlSink`).

Shape letters: H×W frame.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from tmatch import io
from tmatch.errors import InputError, TmatchError
from tmatch.match import Match
from tmatch.video.formats import DEFAULT_FPS, codec_candidates, quiet_native_stderr
from tmatch.video.sources import Frame

def _open_writer(path: Path, fourcc: str, fps: float, hw: tuple[int, int]
                 ) -> cv2.VideoWriter | None:
    size = (int(hw[1]), int(hw[0]))
    with quiet_native_stderr():
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
    if w.isOpened():
        return w
    w.release()
    return None


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
