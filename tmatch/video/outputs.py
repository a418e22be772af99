"""Video and JSON lines files that appear at their final name only when complete.

A file is written under a hidden staging name beside its final name, ``.NAME.PID.tmp.SUFFIX``
(the suffix kept: encoders pick the container from it), and renamed into place once closed. A
segmented video's parts (``OUT.part000.mp4``...) are staged and renamed one by one, so that every
part on disk plays; :func:`join_parts` joins them into ``OUT`` through a staging file too, and
deletes them only once ``OUT`` is in place. Staging files left by a killed process are removed
by the next run writing the same output (:func:`remove_stale`).

>>> from pathlib import Path
>>> staging_path(Path("runs/out.mp4")).name.startswith(".out.mp4.")
True
>>> part_path(Path("runs/out.mp4"), 2).name
'out.part002.mp4'
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from pathlib import Path

import cv2
import numpy as np

from tmatch.errors import InputError, TmatchError
from tmatch.outputs import process_alive
from tmatch.video.formats import codec_candidates, quiet_native_stderr

_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(\.[^.]*)?$")


def staging_path(path: Path) -> Path:
    """The hidden name ``path`` is written under by this process until it is complete."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def publish(staging: Path, path: Path) -> Path:
    """Move a complete staging file to its final name (replacing an older one)."""
    os.replace(staging, path)
    return path


def part_path(path: Path, k: int) -> Path:
    """Part ``k`` of a segmented video ``path``: ``OUT.part000.mp4``..."""
    return path.with_name(f"{path.stem}.part{k:03d}{path.suffix}")


def _part_pattern(path: Path) -> re.Pattern:
    return re.compile(re.escape(path.stem) + r"\.part(\d{3,})" + re.escape(path.suffix) + "$")


def leftover_parts(path: str | os.PathLike) -> list[Path]:
    """Parts of the segmented video ``path`` on disk, in order (left by a run that was killed
    before it joined them)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _part_pattern(path)
    found = []
    for p in path.parent.iterdir():
        m = pattern.match(p.name)
        if m is not None and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Remove the staging files of ``path`` (and of its parts) whose process no longer runs."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    part = _part_pattern(path)
    removed = []
    for p in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp*"):
        m = _STAGING.match(p.name)
        if m is None or not (m.group("name") == path.name or part.match(m.group("name"))):
            continue
        if not process_alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def open_writer(path: Path, candidates: tuple[str, ...], fps: float, hw: tuple[int, int]
                ) -> tuple[cv2.VideoWriter, str]:
    """A ``cv2.VideoWriter`` for ``path`` at ``(H, W)``, with the first FourCC that opens.

    Raises:
        TmatchError: none of ``candidates`` opens in this OpenCV build.
    """
    size = (int(hw[1]), int(hw[0]))
    for cc in candidates:
        with quiet_native_stderr():
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*cc), float(fps), size)
        if w.isOpened():
            return w, cc
        w.release()
    raise TmatchError(f"cannot write {path.suffix} video {path}: no codec among "
                      f"{', '.join(candidates)} works in this OpenCV build at {size[0]}x{size[1]} "
                      "(try --codec mp4v, or an .avi output)")


def join_parts(path: str | os.PathLike, parts: list[Path] | None = None, codec: str = "auto",
               fps: float | None = None) -> int:
    """Join video parts into one video ``path``; the parts are deleted once it is in place.

    Args:
        path: the video to write; its parts default to :func:`leftover_parts` of it.
        parts: the part files, in order.
        codec: ``"auto"`` or a FourCC (as for :class:`~tmatch.video.sinks.VideoSink`).
        fps: frame rate of the result (default: the first part's).

    Returns:
        the number of frames written.

    Raises:
        InputError: no parts to join, or a bad suffix or codec.
    """
    path = Path(path)
    parts = leftover_parts(path) if parts is None else list(parts)
    candidates = codec_candidates(path, codec)
    if not parts:
        raise InputError(f"no parts of {path} to join (looked for {part_path(path, 0).name}, "
                         f"{part_path(path, 1).name}...)")
    remove_stale(path)
    staging = staging_path(path)
    writer: cv2.VideoWriter | None = None
    frames = 0
    try:
        for part in parts:
            with quiet_native_stderr():
                cap = cv2.VideoCapture(str(part))
            try:
                if fps is None:
                    own = cap.get(cv2.CAP_PROP_FPS)
                    fps = float(own) if np.isfinite(own) and own > 0 else 25.0
                while True:
                    ok, img = cap.read()
                    if not ok or img is None:
                        break
                    if writer is None:
                        hw = img.shape[:2]
                        writer, _ = open_writer(staging, candidates, fps, hw)
                    if img.shape[:2] != hw:
                        img = cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
                    writer.write(img)
                    frames += 1
            finally:
                cap.release()
        if writer is None:
            raise InputError(f"none of the {len(parts)} part(s) of {path} has a readable frame")
        writer.release()
        writer = None
        publish(staging, path)
    finally:
        if writer is not None:
            writer.release()
        with contextlib.suppress(OSError):
            staging.unlink()
    for part in parts:
        with contextlib.suppress(OSError):
            part.unlink()
    return frames
