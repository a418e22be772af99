"""Screen capture with ``mss`` (X11, Wayland through XWayland, macOS, Windows): RGB arrays in
screen pixels, the whole virtual screen or a region of it."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from tmatch.errors import TmatchError

_local = threading.local()  # mss handles are per thread


def _mss() -> Any:
    try:
        import mss
    except ImportError:
        raise TmatchError('screen capture needs mss, which this install lacks: pip install "tmatch[screen]"') \
            from None
    sct = getattr(_local, "sct", None)
    if sct is None:
        try:
            sct = _local.sct = (mss.MSS() if hasattr(mss, "MSS") else mss.mss())
        except Exception as e:  # noqa: BLE001 — no display: one line, not a traceback
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TmatchError(f"cannot capture the screen ({why}); is a display running (DISPLAY set)?") from None
    return sct


def screen_size() -> tuple[int, int]:
    """``(width, height)`` of the whole virtual screen, in pixels."""
    mon = _mss().monitors[0]
    return int(mon["width"]), int(mon["height"])


def grab(region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The screen (or ``region = (x, y, w, h)`` of it, clipped to the screen) as ``(H, W, 3)``
    RGB uint8.

    Raises:
        TmatchError: no display, or mss missing.
        InputError: a region that misses the screen.
    """
    from tmatch.region import clip_region

    sct = _mss()
    mon = sct.monitors[0]
    x, y, w, h = (0, 0, int(mon["width"]), int(mon["height"])) if region is None else \
        clip_region(region, (int(mon["height"]), int(mon["width"])), "region")
    shot = sct.grab({"left": int(mon["left"]) + x, "top": int(mon["top"]) + y, "width": w, "height": h})
    bgra = np.frombuffer(shot.bgra, np.uint8).reshape(shot.height, shot.width, 4)
    return np.ascontiguousarray(bgra[:, :, 2::-1])
