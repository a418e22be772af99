"""Where results go: an annotated video (:class:`VideoSink`), JSON lines (:class:`JsonlSink`).

Shape letters: H×W frame.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Sequence, TypeVar

import cv2
import numpy as np

from tmatch import io
from tmatch.errors import InputError, TmatchError
from tmatch.files import atomic_dir
from tmatch.match import Match
from tmatch.video.checks import check_fps
from tmatch.video.formats import DEFAULT_FPS, codec_candidates
from tmatch.video.outputs import (
    join_parts,
    open_writer,
    part_path,
    publish,
    remove_stale,
    staging_path,
)
from tmatch.video.sources import Frame

_O = TypeVar("_O", bound="_Output")


class _Output:
    """An output file that is finished by :meth:`close` or dropped by :meth:`abort`; as a
    context manager, closed at the end of the block or on Ctrl-C, dropped on an error."""

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self: _O) -> _O:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


class VideoSink(_Output):
    """Write RGB frames to a video file at a fixed size and frame rate.

    The writer opens on the first frame, whose size (made even, as encoders need) fixes the
    output size: later frames of another size are resized to it (counted in ``resized``).
    The file is written under a hidden staging name and appears at ``path`` only when
    :meth:`close` has finished it (an MP4 is only playable once closed); :meth:`abort` drops it.

    Args:
        path: output file; the suffix picks the container (``.mp4``, ``.avi``, ``.mkv``...).
        fps: frames per second.
        codec: ``"auto"`` (H.264 ``avc1`` when available, else ``mp4v`` for MP4; ``MJPG`` for
            AVI) or a FourCC.
        segment_frames: when > 0, write ``OUT.part000.mp4``, ``OUT.part001.mp4``... each
            appearing when closed after this many frames, so that all but the last survive a
            SIGKILL; :meth:`close` joins them into ``path`` and deletes them
            (:func:`~tmatch.video.outputs.join_parts` joins parts a killed run left).

    Raises:
        TmatchError: no codec for this container can be opened.
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "auto",
                 segment_frames: int = 0):
        self.path = Path(path)
        self.candidates = codec_candidates(self.path, codec)
        self.fps = check_fps(fps)
        self.segment_frames = max(0, int(segment_frames))
        self.codec: str | None = None
        self.frame_hw: tuple[int, int] | None = None
        self.frames_written = 0
        self.resized = 0
        self.parts: list[Path] = []
        self._first_hw: tuple[int, int] | None = None
        self._writer: cv2.VideoWriter | None = None
        self._target: Path | None = None
        self._in_part = 0
        self._closed = False
        remove_stale(self.path)  # clear what killed runs left, even if no frame comes

    def _open(self, target: Path) -> None:
        assert self.frame_hw is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        tried = (self.codec,) if self.codec else self.candidates
        self._writer, self.codec = open_writer(staging_path(target), tried, self.fps,
                                               self.frame_hw)
        self._target = target
        self._in_part = 0

    def _finish(self) -> None:
        """Close the file being written and move it to its final name."""
        if self._writer is None or self._target is None:
            return
        self._writer.release()
        self._writer = None
        publish(staging_path(self._target), self._target)
        if self.segment_frames:
            self.parts.append(self._target)

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
        if self._writer is not None and self.segment_frames \
                and self._in_part >= self.segment_frames:
            self._finish()
        if self._writer is None:
            self._open(part_path(self.path, len(self.parts)) if self.segment_frames
                       else self.path)
        assert self._writer is not None
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
        self._in_part += 1
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it to ``path``; join the segments if any."""
        if self._closed:
            return
        self._closed = True
        self._finish()
        if self.parts:
            join_parts(self.path, self.parts, self.codec or "auto", self.fps)
            self.parts = []

    def abort(self) -> None:
        """Stop without finishing: the file being written is deleted (closed parts stay, for
        :func:`~tmatch.video.outputs.join_parts`)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None and self._target is not None:
            self._writer.release()
            self._writer = None
            with contextlib.suppress(OSError):
                staging_path(self._target).unlink()


class JsonlSink(_Output):
    """One JSON object per line, written under a hidden staging name and moved to ``path`` when
    closed: a reader of ``path`` sees every line or no file, never a torn line. Each line is
    flushed at once, so the staging file holds the results of a killed run until the next run
    writing ``path`` removes it.

    A segmented run (``tmatch video --segment``) calls :meth:`checkpoint` at every part: the
    lines since the last one are appended to ``path`` itself and synced, so that a killed run
    leaves at ``path`` the lines of every finished part, as it leaves the parts of its video."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"JSON lines path is a folder: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(self.path)
        self.staging = staging_path(self.path)
        self._f = open(self.staging, "w", encoding="utf-8")  # noqa: SIM115 (open for the run)
        self.lines = 0
        self._pending: list[str] = []
        self._visible = None  # ``path`` opened for appending, from the first checkpoint

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        self._f.write(line)
        self._f.flush()
        self.lines += 1
        if self._visible is not None:
            self._pending.append(line)

    def checkpoint(self) -> None:
        """Append the lines written since the last checkpoint to ``path`` and sync it."""
        if self._f.closed:
            return
        if self._visible is None:
            self._visible = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            self._visible.write(self.staging.read_text(encoding="utf-8"))
        else:
            self._visible.write("".join(self._pending))
        self._pending = []
        self._visible.flush()
        os.fsync(self._visible.fileno())

    def _close_visible(self) -> None:
        if self._visible is not None:
            self._visible.close()
            self._visible = None

    def close(self) -> None:
        """Finish the file and move it to ``path``."""
        if not self._f.closed:
            os.fsync(self._f.fileno())
            self._f.close()
            self._close_visible()
            publish(self.staging, self.path)

    def abort(self) -> None:
        """Stop without finishing: nothing new appears at ``path`` (the lines of a segmented
        run's checkpoints stay there, like its closed video parts)."""
        if not self._f.closed:
            self._f.close()
            self._close_visible()
            with contextlib.suppress(OSError):
                self.staging.unlink()


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
        with atomic_dir(p) as tmp:
            for i, f in enumerate(frames):
                io.write_image(tmp / f"frame_{i:05d}.png", f)
        return p
    with VideoSink(p, fps, codec) as sink:
        for f in frames:
            sink.write(f)
    return p
