"""Live windows: whether a display exists, drawing the template with the mouse, showing frames."""

from __future__ import annotations

import contextlib
import os
import re
import sys

import cv2
import numpy as np

from tmatch.errors import InputError


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
