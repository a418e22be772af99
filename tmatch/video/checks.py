"""Checks done before any work: numeric options, and output paths that cannot be written or
would destroy an input.

>>> check_fps(30)
30.0
>>> check_number(float("nan"), "--segment", lo=0)
Traceback (most recent call last):
    ...
tmatch.errors.InputError: --segment must be a finite number >= 0, got nan
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from tmatch import outputs
from tmatch.errors import InputError
from tmatch.outputs import check_number
from tmatch.video.formats import codec_candidates

__all__ = ["MAX_FPS", "check_fps", "check_number", "check_output", "check_outputs"]

#: highest frame rate accepted (writers and players choke on absurd rates).
MAX_FPS = 1000.0


def check_fps(value: float, name: str = "fps") -> float:
    """A frame rate in ``(0, MAX_FPS]``."""
    v = float(value)
    if not (math.isfinite(v) and 0 < v <= MAX_FPS):
        raise InputError(f"{name} must be > 0 and <= {MAX_FPS:g} frames per second, "
                         f"got {value!r}")
    return v


def check_output(path: str | os.PathLike, name: str, *, video_codec: str | None = None
                 ) -> Path:
    """Refuse an output path that cannot be written (:func:`tmatch.outputs.check_output`) or,
    with ``video_codec`` given, whose suffix is no video container."""
    p = Path(path)
    if video_codec is not None:
        try:
            codec_candidates(p, video_codec)
        except InputError as e:
            raise InputError(f"{name}: {e}") from None
    return outputs.check_output(p, name, "file")


def check_outputs(outputs_: Mapping[str, str | os.PathLike | None],
                  inputs: Mapping[str, str | os.PathLike | None] | None = None, *,
                  video: str | None = None, codec: str = "auto") -> None:
    """Check every output path before any work (:func:`tmatch.outputs.check_outputs`: none
    unwritable, none an input or another output) and the video output's container suffix.

    Args:
        outputs_: ``{name: path}`` as the user gave them (``{"--out": ..., "--jsonl": ...}``);
            ``None`` paths are skipped.
        inputs: ``{name: path}`` of the files read (the source, the template).
        video: the name of the output that is a video (its suffix must be a container).
        codec: the codec asked for that video.

    Raises:
        InputError: one line naming the option at fault.
    """
    if video is not None and outputs_.get(video) is not None:
        check_output(outputs_[video], video, video_codec=codec)
    outputs.check_outputs({k: outputs.Output(v) for k, v in outputs_.items()}, inputs)
