"""Find a UI element on the live screen, across display scales (``pip install "tmatch[screen]"``).

    from tmatch import screen

    m = screen.locate("button.png")                 # a Match in screen pixels, or None
    m = screen.locate("button.png", region=(0, 0, 800, 120), confidence=0.9)
    screen.wait("dialog.png", timeout=10)          # polls until it shows (or raises)
    screen.wait_gone("spinner.png", timeout=30)
    shot = screen.grab()                            # (H, W, 3) RGB of the whole screen

pyautogui users change their import only: ``from tmatch.screen import locateOnScreen,
locateAllOnScreen, locateCenterOnScreen`` (:mod:`tmatch.screen.pyautogui`) take pyautogui's
argument names and return its ``Box``/``Point`` types.

Display scales: a template captured on a 2x (retina) display is twice the size of the same
element on a 1x display. ``scales="auto"`` searches the common factors 1, 1.25, 1.5, 1.75, 2 and
their inverses; a number pins one.
"""

from tmatch.screen.capture import grab, screen_size
from tmatch.screen.pyautogui import (
    Box,
    ImageNotFoundException,
    Point,
    locateAllOnScreen,
    locateCenterOnScreen,
    locateOnScreen,
)
from tmatch.screen.search import (
    AUTO_SCALES,
    NotFound,
    locate,
    locate_all,
    screen_matcher,
    wait,
    wait_gone,
)

__all__ = [
    "AUTO_SCALES",
    "Box",
    "ImageNotFoundException",
    "NotFound",
    "Point",
    "grab",
    "locate",
    "locate_all",
    "locateAllOnScreen",
    "locateCenterOnScreen",
    "locateOnScreen",
    "screen_matcher",
    "screen_size",
    "wait",
    "wait_gone",
]
