"""The prepared template matched frame after frame, searched near its last location first.

Shape letters: H×W frame, h×w template.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tmatch import geometry, io
from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.region import shift_match


def search_window(box: tuple[int, int, int, int], image_hw: tuple[int, int],
                  template_hw: tuple[int, int], margin: float = 0.5,
                  max_fraction: float = 0.7, snap: int = 32,
                  size: tuple[int, int] | None = None) -> tuple[int, int, int, int] | None:
    """The region searched first when the template was last seen at ``box``.

    The box grown by ``margin`` times its size on every side (and never smaller than the
    template ``(h, w)``), its sides rounded up to multiples of ``snap`` pixels, shifted to lie
    inside the ``(H, W)`` image. Snapping keeps the number of distinct window sizes small, which
    matters to matchers that prepare the template once per search-image size (the neural ones).
    ``None`` when the window would cover more than ``max_fraction`` of the image (then the whole
    frame is as cheap). ``size = (h, w)`` imposes the window's size instead.

    >>> search_window((100, 100, 20, 10), (480, 640), (10, 20))
    (78, 89, 64, 32)
    """
    x, y, w, h = (float(v) for v in box)
    H, W = int(image_hw[0]), int(image_hw[1])
    th, tw = int(template_hw[0]), int(template_hw[1])
    step = max(1, int(snap))
    if size is not None:
        wh, ww = min(H, int(size[0])), min(W, int(size[1]))
    else:
        ww = min(W, int(np.ceil(max(w * (1 + 2 * margin), tw) / step)) * step)
        wh = min(H, int(np.ceil(max(h * (1 + 2 * margin), th) / step)) * step)
    if ww * wh > max_fraction * W * H:
        return None
    cx, cy = x + w / 2, y + h / 2
    x0 = int(np.clip(round(cx - ww / 2), 0, W - ww))
    y0 = int(np.clip(round(cy - wh / 2), 0, H - wh))
    return x0, y0, ww, wh


class VideoTracker:
    """A matcher with its template prepared once, matched frame after frame.

    Args:
        matcher: any registered matcher (``tmatch.load_matcher(name)``).
        template: ``(h, w, 3)`` RGB uint8 (or a path).
        track: search a window around the last box first, and the whole frame when the window
            gives nothing.
        margin: the window is the last box grown by ``margin`` × its size on each side.
        keep_score: a result from the window is kept only when it scores at least this
            fraction of the last found score and its geometry is plausible (a convex,
            unmirrored quad of sane scale); otherwise the whole frame is searched.

    Attributes:
        prepare_ms: time spent preparing the template (once).
        tracked: frames found inside the search window.
        fallbacks: frames where the window found nothing and the whole frame was searched.

    >>> import numpy as np, tmatch
    >>> img = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    >>> t = VideoTracker(tmatch.load_matcher("ncc"), img[10:30, 20:50], track=True)
    >>> first, second = t.step(img), t.step(img)
    >>> first.box, first.extra["tracked"], second.box, second.extra["tracked"]
    ((20, 10, 30, 20), False, (20, 10, 30, 20), True)
    """

    def __init__(self, matcher: Any, template: io.ImageLike, track: bool = False,
                 margin: float = 0.5, keep_score: float = 0.5):
        if not (np.isfinite(margin) and margin >= 0):
            raise InputError(f"track margin must be a number >= 0, got {margin}")
        if not 0 <= keep_score <= 1:
            raise InputError(f"keep_score must be in [0, 1], got {keep_score}")
        self.matcher = matcher
        self.template = io.read_image(template, "template")
        io.check_pair(self.template, self.template)
        self.track = bool(track)
        self.margin = float(margin)
        self.keep_score = float(keep_score)
        t0 = time.perf_counter()
        self.prepared = matcher.prepare(self.template)
        self.prepare_ms = (time.perf_counter() - t0) * 1000.0
        self.tracked = 0
        self.fallbacks = 0
        self._last_box: tuple[int, int, int, int] | None = None
        self._last_hw: tuple[int, int] | None = None
        self._last_score = 0.0
        self._window_hw: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return getattr(self.matcher, "name", type(self.matcher).__name__)

    def reset(self) -> None:
        """Forget the last location (the next frame is searched whole)."""
        self._last_box, self._last_score, self._window_hw = None, 0.0, None

    def _match(self, image: np.ndarray) -> Match:
        # The matcher's per-image hook with the prepared template (what match_many does).
        return self.matcher.match_prepared(self.prepared, self.template, image)

    def _window(self, image_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The search window; its size is kept while the object's size barely changes, so that
        matchers preparing the template per search size (neural ones) reuse that work."""
        assert self._last_box is not None
        tpl_hw = self.template.shape[:2]
        window = search_window(self._last_box, image_hw, tpl_hw, self.margin)
        if window is not None and self._window_hw is not None:
            ph, pw = self._window_hw
            if 0.75 * pw <= window[2] <= pw and 0.75 * ph <= window[3] <= ph:
                window = search_window(self._last_box, image_hw, tpl_hw, self.margin, size=(ph, pw))
        if window is not None:
            self._window_hw = (window[3], window[2])
        return window

    def _credible(self, m: Match, window_hw: tuple[int, int]) -> bool:
        """Whether a result found in the search window can be trusted without a full search."""
        if not m.found or m.box is None or m.box[2] <= 0 or m.box[3] <= 0:
            return False
        if m.score < self.keep_score * self._last_score:
            return False
        if m.homography is not None:
            return geometry.plausible_homography(m.homography, self.template.shape[:2], window_hw)
        return True

    def step(self, image: np.ndarray) -> Match:
        """Match the prepared template in one frame ``(H, W, 3)`` RGB uint8.

        The frame goes to the matcher whatever its size; when the matcher refuses it (an
        :class:`InputError`, e.g. a frame smaller than the template) the result is
        ``found=False`` with the reason in ``extra["error"]``.
        """
        t0 = time.perf_counter()
        hw = image.shape[:2]
        if hw != self._last_hw:
            self._last_box, self._last_hw = None, hw
        try:
            m = self._search(image)
        except InputError as e:
            m = Match.absent(hw, method=self.name, error=str(e))
        ok_box = m.found and m.box is not None and m.box[2] > 0 and m.box[3] > 0
        self._last_box = m.box if ok_box else None
        self._last_score = float(m.score) if ok_box else 0.0
        m.ms = (time.perf_counter() - t0) * 1000.0
        m.method = m.method or self.name
        return m

    def _search(self, image: np.ndarray) -> Match:
        """The search window first (``track``), the whole frame when it gives nothing credible."""
        hw = image.shape[:2]
        m = None
        window = None
        if self.track and self._last_box is not None:
            window = self._window(hw)
        if window is not None:
            x, y, w, h = window
            local = self._match(np.ascontiguousarray(image[y:y + h, x:x + w]))
            if self._credible(local, (h, w)):
                m = shift_match(local, (x, y), hw)
                self.tracked += 1
            else:
                self.fallbacks += 1
        from_window = m is not None
        if m is None:
            m = self._match(image)
        if self.track:
            m.extra["tracked"] = from_window
            if window is not None:
                m.extra["search"] = list(window)
        return m
