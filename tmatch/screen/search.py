"""Locate a template on the live screen: once, every instance, or waiting for it to show or go.

Results are :class:`~tmatch.match.Match` objects in screen pixels (a ``region`` searched is
only where to look: the answer stays in screen coordinates). The default matcher for screens is
multi-scale normalised cross-correlation over the display factors (``scales="auto"``): screen
elements are pixel copies, drawn again at another device scale; ``method=`` takes any registered
matcher instead (``hybrid`` for photos on screen, any rotation).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Sequence

import cv2
import numpy as np

from tmatch.errors import InputError, TmatchError
from tmatch.io import ImageLike, read_image
from tmatch.match import Match

#: display factors searched by ``scales="auto"``: a 2x capture seen on a 1x screen is at 0.5.
AUTO_SCALES = (0.5, 0.5714, 0.6667, 0.8, 1.0, 1.25, 1.5, 1.75, 2.0)
#: least correlation for a screen match when no ``confidence`` is asked for
SCREEN_THRESHOLD = 0.8


class NotFound(TmatchError):
    """:func:`wait` ran out of time (or :func:`wait_gone`: the template never went away)."""


def _scales(scales: str | float | Sequence[float]) -> tuple[float, ...]:
    if isinstance(scales, str):
        if scales.strip().lower() != "auto":
            raise InputError(f"scales must be 'auto', a number or a list of numbers, got {scales!r}")
        return AUTO_SCALES
    if isinstance(scales, (int, float)):
        return (float(scales),)
    out = tuple(float(s) for s in scales)
    if not out:
        raise InputError("scales must not be empty")
    return out


@functools.lru_cache(maxsize=16)
def screen_matcher(method: str = "ncc", scales: Any = "auto", threshold: float | None = None) -> Any:
    """The matcher :func:`locate` uses (cached): ``ncc`` over the display ``scales`` with the
    screen threshold, or another registered matcher at its defaults."""
    from tmatch.registry import load_matcher

    if method == "ncc":
        return load_matcher("ncc", scales=_scales(scales) if not isinstance(scales, list) else tuple(scales),
                            threshold=SCREEN_THRESHOLD if threshold is None else float(threshold))
    return load_matcher(method)


def _sure(m: Match, confidence: float | None) -> bool:
    """Whether ``m`` counts as found: its calibrated confidence (else its score) reaches
    ``confidence`` when one is asked for."""
    if not m.found:
        return False
    if confidence is None:
        return True
    value = m.confidence if m.confidence is not None else m.score
    return float(value) >= float(confidence)


def _check_confidence(confidence: float | None) -> None:
    if confidence is not None and not (np.isfinite(confidence) and 0.0 <= float(confidence) <= 1.0):
        raise InputError(f"confidence must be in [0, 1], got {confidence!r}")


#: the coarse pass shrinks screen and template until the template's shorter side is about this
COARSE_SIDE = 8
#: places kept per display factor by the coarse pass, all verified at full resolution
PER_SCALE = 12
#: the coarse pass shrinks the screen by at most this factor (more loses small elements)
MAX_SHRINK = 2
#: full-resolution scores this close to the best are ties, settled for the factor nearest 1
TIE = 0.01


def coarse_to_fine(template: np.ndarray, shot: np.ndarray, scales: Sequence[float],
                   threshold: float = SCREEN_THRESHOLD) -> Match:
    """Multi-scale NCC, coarse to fine: for every display factor the screen and the template are
    shrunk together (the template to about :data:`COARSE_SIDE` px, the screen at least by 2,
    the template never below 4 px) and correlated; the best
    :data:`PER_SCALE` places of every factor are correlated again at full resolution in a small
    window. The answer is the best full-resolution peak (the same score as ``ncc`` would give
    there); near-ties go to the display factor nearest 1.

    Args:
        template: ``(h, w, 3)`` RGB; shot: ``(H, W, 3)`` RGB.
    """
    from tmatch import geometry

    gray = cv2.cvtColor(shot, cv2.COLOR_RGB2GRAY)
    tgray = cv2.cvtColor(template, cv2.COLOR_RGB2GRAY)
    H, W = gray.shape
    shrunk: dict[int, np.ndarray] = {}
    cands: list[tuple[float, float, int, int, int, int]] = []  # (coarse score, scale, x, y, w, h)
    for s in scales:
        tw, th = max(2, round(tgray.shape[1] * s)), max(2, round(tgray.shape[0] * s))
        if tw > W or th > H:
            continue
        d = int(max(2 if min(tw, th) >= 2 * 4 else 1, min(MAX_SHRINK, min(tw, th) // COARSE_SIDE)))  # never below 4 px
        if d not in shrunk:
            shrunk[d] = gray if d == 1 else cv2.resize(gray, (W // d, H // d), interpolation=cv2.INTER_AREA)
        small = shrunk[d]
        cw, ch = max(2, round(tw / d)), max(2, round(th / d))
        if cw > small.shape[1] or ch > small.shape[0]:
            continue
        t = cv2.resize(tgray, (cw, ch), interpolation=cv2.INTER_AREA)
        if float(t.std()) < 1e-3:
            continue
        r = geometry.ncc_map(small, t)
        for _ in range(PER_SCALE):  # the best few places at this factor
            _, mx, _, (x, y) = cv2.minMaxLoc(r)
            cands.append((float(mx), float(s), x * d, y * d, tw, th))
            r[max(0, y - ch // 2):y + ch // 2 + 1, max(0, x - cw // 2):x + cw // 2 + 1] = -1.0
    verified: list[tuple[float, float, int, int, int, int]] = []
    for _, s, x, y, tw, th in cands:
        pad = max(4, int(round(tw / COARSE_SIDE)) * 2)
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(W, x + tw + pad), min(H, y + th + pad)
        if x1 - x0 < tw or y1 - y0 < th:
            continue
        t = tgray if (tw, th) == tgray.shape[::-1] else cv2.resize(
            tgray, (tw, th), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        r = geometry.ncc_map(np.ascontiguousarray(gray[y0:y1, x0:x1]), t)
        _, mx, _, (bx, by) = cv2.minMaxLoc(r)
        verified.append((float(mx), s, x0 + bx, y0 + by, tw, th))
    best = None
    if verified:
        top = max(v[0] for v in verified)  # ties (a plain crop matches itself at half size too):
        best = min((v for v in verified if v[0] >= top - TIE), key=lambda v: (abs(np.log(v[1])), -v[0]))
    if best is None or best[0] < threshold:
        return Match.absent((H, W), score=0.0 if best is None else best[0], method="screen")
    score, s, x, y, tw, th = best
    poly = geometry.rect_polygon(x, y, tw, th)
    hm = np.array([[tw / template.shape[1], 0, x], [0, th / template.shape[0], y], [0, 0, 1]], float)
    return Match(found=True, score=score, polygon=poly, box=(int(x), int(y), int(tw), int(th)),
                 mask=geometry.mask_from_polygon(poly, (H, W)), homography=hm, method="screen",
                 extra={"scale": s})


def locate(template: ImageLike, region: tuple[int, int, int, int] | None = None,
           confidence: float | None = None, scales: str | float | Sequence[float] = "auto",
           method: str = "ncc", screenshot: np.ndarray | None = None, exhaustive: bool = False) -> Match | None:
    """Where ``template`` is on the screen now, or ``None``.

    Args:
        template: a path or an RGB array of the element.
        region: ``(x, y, w, h)`` of the screen to search (default: all of it).
        confidence: the least calibrated confidence (``Match.confidence``; the score for a
            matcher without a calibration) an answer needs; default: the matcher's decision.
        scales: ``"auto"`` (the display factors :data:`AUTO_SCALES`), a number, or a list.
        method: ``ncc`` (default for screens) or any registered matcher.
        screenshot: search this ``(H, W, 3)`` RGB picture instead of grabbing the screen.
        exhaustive: ``ncc`` at full resolution at every display factor (about 20x slower than
            the default coarse-to-fine pass, which can miss a small element among look-alikes).
    """
    _check_confidence(confidence)
    tpl = read_image(template, "template")
    shot = screenshot if screenshot is not None else _grab_all()
    if method == "ncc" and not exhaustive:  # the fast path: coarse to fine over the display factors
        from tmatch.region import in_image_pixels, searched_part

        part, offset, hw = searched_part(shot, region)
        m = in_image_pixels(coarse_to_fine(tpl, part, _scales(scales)), offset, hw)
        return m if _sure(m, confidence) else None
    key = tuple(scales) if isinstance(scales, (list, tuple)) else scales
    m = screen_matcher(method, key).match(tpl, shot, **({} if region is None else {"region": region}))
    return m if _sure(m, confidence) else None


def locate_all(template: ImageLike, region: tuple[int, int, int, int] | None = None,
               confidence: float | None = None, scales: str | float | Sequence[float] = "auto",
               method: str = "ncc", max_instances: int = 50, screenshot: np.ndarray | None = None) -> list[Match]:
    """Every instance of ``template`` on the screen, best first (arguments as :func:`locate`)."""
    _check_confidence(confidence)
    tpl = read_image(template, "template")
    shot = screenshot if screenshot is not None else _grab_all()
    key = tuple(scales) if isinstance(scales, (list, tuple)) else scales
    found = screen_matcher(method, key).match_all(tpl, shot, max_instances=max_instances,
                                                  **({} if region is None else {"region": region}))
    return [m for m in found if _sure(m, confidence)]


def _grab_all() -> np.ndarray:
    from tmatch.screen.capture import grab

    return grab()


def _poll(check, timeout: float, interval: float, what: str) -> Any:
    if not (np.isfinite(timeout) and timeout >= 0):
        raise InputError(f"timeout must be >= 0 seconds, got {timeout!r}")
    if not (np.isfinite(interval) and interval > 0):
        raise InputError(f"interval must be > 0 seconds, got {interval!r}")
    deadline = time.monotonic() + float(timeout)
    while True:
        t0 = time.monotonic()
        done, value = check()
        if done:
            return value
        if time.monotonic() >= deadline:
            raise NotFound(what)
        # sleep the rest of the interval: polling never takes more than one core's share
        time.sleep(max(0.0, min(float(interval) - (time.monotonic() - t0), deadline - time.monotonic())))


def wait(template: ImageLike, timeout: float = 10.0, interval: float = 0.25, **kwargs: Any) -> Match:
    """Poll the screen every ``interval`` seconds until ``template`` shows; its :class:`Match`.

    Raises:
        NotFound: not seen within ``timeout`` seconds.
    """
    tpl = read_image(template, "template")

    def check():
        m = locate(tpl, **kwargs)
        return m is not None, m

    return _poll(check, timeout, interval, f"the template did not show within {timeout} s")


def wait_gone(template: ImageLike, timeout: float = 10.0, interval: float = 0.25, **kwargs: Any) -> None:
    """Poll until ``template`` is no longer on the screen.

    Raises:
        NotFound: still there after ``timeout`` seconds.
    """
    tpl = read_image(template, "template")
    _poll(lambda: (locate(tpl, **kwargs) is None, None), timeout, interval,
          f"the template was still there after {timeout} s")
