"""Which files are videos and frames, which codecs write each container, and silencing the
native libraries while they probe.

>>> codec_candidates("out.avi")
('MJPG', 'XVID', 'mp4v')
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

from tmatch.errors import InputError

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


def codec_candidates(path: str | os.PathLike, codec: str = "auto") -> tuple[str, ...]:
    """FourCCs to try for ``path``: ``CODECS[suffix]`` for ``"auto"``, else just ``codec``.

    >>> codec_candidates("out.mp4")
    ('avc1', 'mp4v')
    """
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise InputError(f"cannot write video {Path(path).name!r} ({what}): the video suffix "
                         f"must be one of {', '.join(CODECS)}")
    if codec in ("", "auto", None):
        return CODECS[suffix]
    if len(codec) != 4:
        raise InputError(f"codec must be 'auto' or a four-character code like mp4v, got {codec!r}")
    return (codec,)
