"""Checks done before any work: numeric options, and output paths that cannot be written or
would destroy an input.

>>> check_fps(30)
30.0
>>> check_number(float("nan"), "--segment", lo=0)
Traceback (most recent call last):
    ...
tmatch.errors.InputError: --segment must be a number >= 0, got nan
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from tmatch.errors import InputError
from tmatch.video.formats import codec_candidates

#: highest frame rate accepted (writers and players choke on absurd rates).
MAX_FPS = 1000.0


def check_number(value: float, name: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``value`` as a float when it is finite and in ``[lo, hi]``; else :class:`InputError`
    naming the option."""
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        bounds = f">= {lo:g}" if math.isinf(hi) else f"in [{lo:g}, {hi:g}]"
        raise InputError(f"{name} must be a number {bounds}, got {value!r}")
    return v


def check_fps(value: float, name: str = "fps") -> float:
    """A frame rate in ``(0, MAX_FPS]``."""
    v = float(value)
    if not (math.isfinite(v) and 0 < v <= MAX_FPS):
        raise InputError(f"{name} must be > 0 and <= {MAX_FPS:g} frames per second, "
                         f"got {value!r}")
    return v


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass  # one of them does not exist (yet)
    return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, name: str, *, video_codec: str | None = None
                 ) -> Path:
    """Refuse an output path that cannot be written: an existing folder, a parent that is a
    file or not writable, or (``video_codec`` given) a suffix that is no video container.
    A missing parent folder is fine (it is created when the file is written)."""
    p = Path(path)
    if video_codec is not None:
        try:
            codec_candidates(p, video_codec)
        except InputError as e:
            raise InputError(f"{name}: {e}") from None
    if p.is_dir():
        example = p / ("out" + (p.suffix or (".mp4" if video_codec is not None else ".jsonl")))
        raise InputError(f"{name} {p} is a folder; give a file name, like {example}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{name} {p} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{name} {p} cannot be written: folder {parent} is not writable")
    return p


def check_outputs(outputs: Mapping[str, str | os.PathLike | None],
                  inputs: Mapping[str, str | os.PathLike | None] | None = None, *,
                  video: str | None = None, codec: str = "auto") -> None:
    """Check every output path before any work (:func:`check_output`), and that no output is an
    input or another output.

    Args:
        outputs: ``{name: path}`` as the user gave them (``{"--out": ..., "--jsonl": ...}``);
            ``None`` paths are skipped.
        inputs: ``{name: path}`` of the files read (the source, the template).
        video: the name of the output that is a video (its suffix must be a container).
        codec: the codec asked for that video.

    Raises:
        InputError: one line naming the option at fault.
    """
    given = {k: Path(v) for k, v in outputs.items() if v is not None}
    read = {k: Path(v) for k, v in (inputs or {}).items() if v is not None}
    seen: dict[str, Path] = {}
    for name, p in given.items():
        for other, q in read.items():
            if _same_file(p, q):
                raise InputError(f"{name} {p} is the input {other}: writing it would destroy it; "
                                 "choose another output name")
        for other, q in seen.items():
            if _same_file(p, q):
                raise InputError(f"{name} and {other} are the same file {p}")
        check_output(p, name, video_codec=codec if name == video else None)
        seen[name] = p
