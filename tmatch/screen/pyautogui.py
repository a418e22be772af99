"""pyautogui's locate calls, found across display scales: change the import, keep the script.

``locateOnScreen(image, minSearchTime=0, grayscale=None, region=None, confidence=None)`` returns
a ``Box(left, top, width, height)`` or raises :class:`ImageNotFoundException` (pyautogui ≥ 0.9.41
raises by default; ``tmatch.screen.pyautogui.USE_IMAGE_NOT_FOUND_EXCEPTION = False`` returns
``None`` instead, as older pyautogui did). ``confidence`` is tmatch's calibrated confidence, the
probability that the answer is right, where pyautogui took a raw correlation.

>>> Box(10, 20, 30, 40).left, Point(25, 40)
(10, Point(x=25, y=40))
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

#: raise ImageNotFoundException when nothing is found (pyautogui's default since 0.9.41)
USE_IMAGE_NOT_FOUND_EXCEPTION = True


class Box(NamedTuple):
    left: int
    top: int
    width: int
    height: int


class Point(NamedTuple):
    x: int
    y: int


class ImageNotFoundException(Exception):
    """The image was not found on the screen (pyscreeze's exception of the same name)."""


def _box(m: Any) -> Box:
    x, y, w, h = m.box
    return Box(int(x), int(y), int(w), int(h))


def locateOnScreen(image: Any, minSearchTime: float = 0, **kwargs: Any) -> Box | None:  # noqa: N802
    """The first place ``image`` is on the screen, searching for up to ``minSearchTime`` s."""
    from tmatch.screen.search import locate

    opts = _options(kwargs)
    deadline = time.monotonic() + float(minSearchTime or 0)
    while True:
        m = locate(image, **opts)
        if m is not None:
            return _box(m)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if USE_IMAGE_NOT_FOUND_EXCEPTION:
        raise ImageNotFoundException("could not locate the image on the screen")
    return None


def locateAllOnScreen(image: Any, **kwargs: Any) -> Iterator[Box]:  # noqa: N802
    """Every place ``image`` is on the screen (a generator of ``Box``, as pyautogui's)."""
    from tmatch.screen.search import locate_all

    for m in locate_all(image, **_options(kwargs)):
        yield _box(m)


def locateCenterOnScreen(image: Any, **kwargs: Any) -> Point | None:  # noqa: N802
    """The centre of :func:`locateOnScreen`'s box."""
    b = locateOnScreen(image, **kwargs)
    return None if b is None else Point(b.left + b.width // 2, b.top + b.height // 2)


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """pyautogui's keyword arguments → :func:`tmatch.screen.locate`'s."""
    from tmatch.errors import InputError

    kwargs = dict(kwargs)
    kwargs.pop("grayscale", None)  # tmatch correlates grey levels already
    kwargs.pop("step", None)
    kwargs.pop("limit", None)
    out = {k: kwargs.pop(k) for k in ("region", "confidence", "scales", "method") if k in kwargs}
    if kwargs:
        raise InputError(f"unknown argument(s) {', '.join(sorted(kwargs))}")
    if out.get("region") is not None:
        out["region"] = tuple(int(v) for v in out["region"])
    return out
