"""The view protocols: ``rotate``, ``zoom-out``, ``zoom-in``, ``perspective`` and ``screen``.

Each draws its parameters with ``draw(rng)`` (a :class:`View`, tested for its ranges) and
applies them with ``apply(pair, view)``; ``__call__`` does both.

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tmatch import geometry
from tmatch.data.pairs import Pair
from tmatch.data.protocols.classic import Context, warp_mask
from tmatch.errors import DataError


@dataclass(frozen=True)
class View:
    """The parameters a view protocol drew for one pair (what its tests check).

    Attributes:
        angle: in-plane rotation in degrees (``rotate``), or the camera's roll (``perspective``).
        scale: the template's scale in the new image (at its centre for ``perspective``).
        tilt: degrees between the viewing direction and the target plane's normal.
        tilt_dir: direction, in degrees, of the axis about which the plane is tilted.
        offset: ``(u, v)`` in ``[-1, 1]``: where the template's footprint moves (a share of the
            allowed range).
        window: ``(a, b)`` in ``[0, 1]``: the size of the search window within its allowed range
            (``zoom-out`` when ``larger``).
        larger: ``zoom-out``: the search image is cropped smaller than the template.
    """

    angle: float = 0.0
    scale: float = 1.0
    tilt: float = 0.0
    tilt_dir: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)
    window: tuple[float, float] = (0.0, 0.0)
    larger: bool = False


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _check_range(name: str, lo_hi: tuple[float, float], low: float = 0.0) -> None:
    if not low < lo_hi[0] <= lo_hi[1]:
        raise DataError(f"{name} range must be {low} < low <= high, got {tuple(lo_hi)}")


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0, tx], [0, 1.0, ty], [0, 0, 1.0]])


def _rotation_scale(angle: float, scale: float) -> np.ndarray:
    a = np.deg2rad(angle)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def viewpoint_homography(tilt: float, tilt_dir: float, roll: float, scale: float,
                         focal: float) -> np.ndarray:
    """The homography of a planar target seen by a pinhole camera from an oblique viewpoint.

    The target's plane point ``(x, y)`` (its centre at the origin, one unit per template pixel)
    is rotated by ``tilt`` degrees about the in-plane axis at ``tilt_dir`` degrees, then the
    camera rolls by ``roll`` degrees about its optical axis; the plane's centre lies on the
    optical axis at distance ``focal / scale``; image coordinates are relative to the principal
    point, with focal length ``focal`` pixels. The scale at the centre is ``scale`` along the
    tilt axis and ``scale * cos(tilt)`` across it.

    Returns:
        ``(3, 3)`` homography, centred plane coordinates → centred image coordinates.

    >>> hm = viewpoint_homography(0, 0, 0, 2.0, 500)
    >>> np.allclose(hm, np.diag([2.0, 2.0, 1.0]))
    True
    """
    t, a = np.deg2rad(tilt), np.deg2rad(tilt_dir)
    axis = np.array([np.cos(a), np.sin(a), 0.0]) * t
    r_tilt = cv2.Rodrigues(axis)[0]
    r = _rotation_scale(roll, 1.0) @ r_tilt
    d = float(focal) / float(scale)
    m = np.column_stack([r[:, 0], r[:, 1], [0.0, 0.0, d]])
    hm = np.diag([float(focal), float(focal), 1.0]) @ m
    return hm / hm[2, 2]


def _coverage(g: np.ndarray, src_hw: tuple[int, int], out_hw: tuple[int, int],
              ref: np.ndarray) -> np.ndarray:
    """``(H', W')`` bool: output pixels whose centre maps back through ``g`` inside the source
    image and in front of the camera (the same side of the horizon as the point ``ref``)."""
    H2, W2 = out_hw
    Hs, Ws = src_hw
    gi = np.linalg.inv(g)
    if float(gi[2] @ np.array([ref[0], ref[1], 1.0])) < 0:
        gi = -gi
    x = np.arange(W2, dtype=np.float64)[None, :] + 0.5
    y = np.arange(H2, dtype=np.float64)[:, None] + 0.5
    den = gi[2, 0] * x + gi[2, 1] * y + gi[2, 2]
    safe = np.where(den > 1e-9, den, 1.0)
    sx = (gi[0, 0] * x + gi[0, 1] * y + gi[0, 2]) / safe
    sy = (gi[1, 0] * x + gi[1, 1] * y + gi[1, 2]) / safe
    return (den > 1e-9) & (sx >= 0) & (sx < Ws) & (sy >= 0) & (sy < Hs)


def _blurred(image: np.ndarray) -> np.ndarray:
    H, W = image.shape[:2]
    k = max(1, min(H, W) // 24)
    small = cv2.resize(image, (max(1, W // k), max(1, H // k)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (W, H), interpolation=cv2.INTER_LINEAR)


def _view(pair: Pair, g: np.ndarray, out_hw: tuple[int, int], ref: np.ndarray,
          interpolation: int = cv2.INTER_LINEAR) -> Pair:
    """Resample the search image by ``g`` (old image → new image) into an ``out_hw`` canvas;
    what the photo does not cover is filled with a heavily blurred copy (no hard edges)."""
    H2, W2 = int(out_hw[0]), int(out_hw[1])
    image = cv2.warpPerspective(pair.image, geometry.to_cv_homography(g), (W2, H2),
                                flags=interpolation, borderMode=cv2.BORDER_REFLECT_101)
    cover = _coverage(g, pair.image.shape[:2], (H2, W2), ref)
    if not cover.all():
        if cover.any():
            image[~cover] = image[cover].mean(axis=0).astype(np.uint8)
        image = np.where(cover[:, :, None], image, _blurred(image))
    image = np.ascontiguousarray(image)
    if not pair.present or pair.homography is None:
        return pair.copy(image=image, mask=np.zeros((H2, W2), bool))
    hm = g @ pair.homography
    poly = geometry.template_polygon(hm, pair.template.shape[:2])
    if pair.meta.target == "box":
        mask = geometry.mask_from_polygon(poly, (H2, W2))
    else:
        mask = warp_mask(pair.mask, g, (H2, W2)) & geometry.mask_from_polygon(poly, (H2, W2))
    return pair.copy(image=image, mask=mask, polygon=poly, homography=hm)


def _place(pair: Pair, local, offset: tuple[float, float], shift: float, margin: float
           ) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """Place the template under ``local(template_hw)`` (a homography from template pixels to
    coordinates centred on the footprint) near where it was: ``(g, out_hw, centre)`` with ``g``
    the old image → new image map. The canvas keeps the image's size, grown when the footprint
    would not fit (the drawn scale and angle are never changed to make it fit). An absent
    template: the whole image is transformed about its centre, on the same canvas."""
    H, W = pair.image.shape[:2]
    if not pair.present or pair.homography is None:
        c = np.array([W / 2, H / 2])
        g = _translate(*c) @ local((H, W))
        return g, (H, W), c
    h, w = pair.template.shape[:2]
    hm_local = local((h, w))
    poly = geometry.template_polygon(hm_local, (h, w))
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    m = margin * max(H, W)
    W2 = max(W, int(np.ceil(hi[0] - lo[0] + 2 * m)))
    H2 = max(H, int(np.ceil(hi[1] - lo[1] + 2 * m)))
    old = geometry.project(pair.homography, np.array([[w / 2, h / 2]]))[0]
    c = old + np.asarray(offset, float) * shift * np.array([W, H])
    c = np.clip(c, m - lo, np.maximum(m - lo, np.array([W2, H2]) - m - hi))
    g = _translate(*c) @ hm_local @ np.linalg.inv(pair.homography)
    return g, (H2, W2), c


@dataclass(frozen=True)
class Rotate:
    """The template seen at any angle: the search image is rotated and scaled about the template
    (which moves by up to ``shift`` of the image size); the canvas grows when the rotated
    footprint would not fit, so no drawn angle or scale is ever changed.

    Attributes:
        angle: the angle is uniform in ``[-angle, angle)`` degrees (180: the full circle).
        scale: the template's scale, log-uniform in this range.
        shift: the footprint's centre moves by up to this share of the image size.
        margin: the footprint keeps this share of the image size from the borders.

    >>> v = Rotate().draw(np.random.default_rng(0))
    >>> -180 <= v.angle < 180 and 0.8 <= v.scale <= 1.25
    True
    """

    angle: float = 180.0
    scale: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.2
    margin: float = 0.02
    name: str = "rotate"

    def __post_init__(self) -> None:
        _check_range("scale", self.scale)

    def draw(self, rng: np.random.Generator) -> View:
        return View(angle=float(rng.uniform(-self.angle, self.angle)),
                    scale=_log_uniform(rng, self.scale), offset=tuple(rng.uniform(-1, 1, 2)))

    def apply(self, pair: Pair, v: View) -> Pair:
        def local(hw):
            return _rotation_scale(v.angle, v.scale) @ _translate(-hw[1] / 2, -hw[0] / 2)

        g, out_hw, c = _place(pair, local, v.offset, self.shift, self.margin)
        return _view(pair, g, out_hw, c)

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        return self.apply(pair, self.draw(rng))


@dataclass(frozen=True)
class Perspective:
    """The planar target seen from an oblique viewpoint (:func:`viewpoint_homography`): the
    search image, taken as the target's plane, is re-projected through a pinhole camera whose
    optical axis passes through the template's centre.

    Attributes:
        tilt: degrees between the new viewing direction and the plane's normal, uniform.
        roll: the camera's roll (in-plane rotation), uniform in ``[-roll, roll]`` degrees.
        scale: the template's scale at its centre, log-uniform.
        focal: the focal length as a share of the photo's longer side (1.0: a normal lens,
            about 53° across the longer side).
        shift: the footprint's centre moves by up to this share of the image size.
        margin: the footprint keeps this share of the image size from the borders (the canvas
            grows when it would not fit).

    >>> v = Perspective().draw(np.random.default_rng(0))
    >>> 25 <= v.tilt <= 40 and -30 <= v.angle <= 30
    True
    """

    tilt: tuple[float, float] = (25.0, 40.0)
    roll: float = 30.0
    scale: tuple[float, float] = (0.7, 1.25)
    focal: float = 1.0
    shift: float = 0.2
    margin: float = 0.02
    name: str = "perspective"

    def __post_init__(self) -> None:
        _check_range("scale", self.scale)
        if not 0 <= self.tilt[0] <= self.tilt[1] < 80:
            raise DataError(f"tilt range must be 0 <= low <= high < 80 degrees, got {self.tilt}")

    def draw(self, rng: np.random.Generator) -> View:
        return View(tilt=float(rng.uniform(*self.tilt)), tilt_dir=float(rng.uniform(0, 360)),
                    angle=float(rng.uniform(-self.roll, self.roll)),
                    scale=_log_uniform(rng, self.scale), offset=tuple(rng.uniform(-1, 1, 2)))

    def focal_px(self, image_hw: tuple[int, int]) -> float:
        """The focal length in pixels for a search image of ``image_hw``."""
        return self.focal * max(image_hw)

    def apply(self, pair: Pair, v: View) -> Pair:
        f = self.focal_px(pair.image.shape[:2])

        def local(hw):
            return viewpoint_homography(v.tilt, v.tilt_dir, v.angle, v.scale, f) \
                @ _translate(-hw[1] / 2, -hw[0] / 2)

        g, out_hw, c = _place(pair, local, v.offset, self.shift, self.margin)
        return _view(pair, g, out_hw, c)

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        return self.apply(pair, self.draw(rng))


@dataclass(frozen=True)
class ZoomOut:
    """The template is a high-resolution view of its target: the search image is the photo
    shrunk (area-averaged) so that the template appears at ``scale`` of its size. With
    probability ``larger_rate`` the search image is further cropped, around the footprint, to a
    window smaller than the template on both sides: the template is larger than the image.

    Attributes:
        scale: the template's scale in the image, log-uniform (0.25–0.5).
        larger_rate: probability of cropping the image below the template's size.

    >>> v = ZoomOut().draw(np.random.default_rng(0))
    >>> 0.25 <= v.scale <= 0.5
    True
    """

    scale: tuple[float, float] = (0.25, 0.5)
    larger_rate: float = 0.35
    name: str = "zoom-out"

    def __post_init__(self) -> None:
        _check_range("scale", self.scale)
        if self.scale[1] > 1:
            raise DataError(f"zoom-out scales are at most 1, got {self.scale}")

    def draw(self, rng: np.random.Generator) -> View:
        return View(scale=_log_uniform(rng, self.scale), larger=bool(rng.uniform() < self.larger_rate),
                    window=tuple(rng.uniform(0, 1, 2)), offset=tuple(rng.uniform(-1, 1, 2)))

    def apply(self, pair: Pair, v: View) -> Pair:
        H, W = pair.image.shape[:2]
        Ws, Hs = max(1, round(v.scale * W)), max(1, round(v.scale * H))
        image = cv2.resize(pair.image, (Ws, Hs), interpolation=cv2.INTER_AREA)
        g = np.diag([Ws / W, Hs / H, 1.0])  # exactly the resize, in tmatch's pixel convention
        if not pair.present or pair.homography is None:
            return pair.copy(image=np.ascontiguousarray(image), mask=np.zeros((Hs, Ws), bool))
        h, w = pair.template.shape[:2]
        poly = geometry.template_polygon(g @ pair.homography, (h, w))
        if pair.meta.target == "box":
            mask = geometry.mask_from_polygon(poly, (Hs, Ws))
        else:
            small = cv2.resize(pair.mask.astype(np.float32), (Ws, Hs), interpolation=cv2.INTER_AREA)
            mask = (small >= 0.5) & geometry.mask_from_polygon(poly, (Hs, Ws))
        if v.larger:
            x0, y0, x1, y1 = _window(poly, (w, h), (Ws, Hs), v)
            image, mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
            g = _translate(-x0, -y0) @ g
        hm = g @ pair.homography
        return pair.copy(image=np.ascontiguousarray(image), mask=np.ascontiguousarray(mask),
                         polygon=geometry.template_polygon(hm, (h, w)), homography=hm)

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        return self.apply(pair, self.draw(rng))


def _window(poly: np.ndarray, template_wh: tuple[int, int], image_wh: tuple[int, int],
            v: View, pad: int = 2) -> tuple[int, int, int, int]:
    """An integer window ``(x0, y0, x1, y1)`` of the image holding the footprint ``poly`` (with
    ``pad`` pixels to spare where there is room), smaller than the template on each side where
    the footprint allows; its size and place are drawn by ``v.window`` and ``v.offset``."""
    out = []
    for k in range(2):
        size = image_wh[k]
        lo = int(np.clip(np.floor(poly[:, k].min()), 0, size))
        hi = int(np.clip(np.ceil(poly[:, k].max()), lo, size))
        small = min(hi - lo + 2 * pad, size)
        big = max(small, min(template_wh[k] - 1, size))
        n = round(small + v.window[k] * (big - small))
        start_lo, start_hi = max(0, hi - n), min(lo, size - n)
        start_hi = max(start_lo, start_hi)
        p = min(pad, (start_hi - start_lo) // 2)
        a, b = start_lo + p, start_hi - p
        start = round(a + (v.offset[k] + 1) / 2 * (b - a))
        out.append((start, start + n))
    (x0, x1), (y0, y1) = out
    return x0, y0, x1, y1


@dataclass(frozen=True)
class ZoomIn:
    """The template appears enlarged: the search image is a window, of the photo's own size, of
    the photo magnified ``scale`` times (bicubic). A template whose footprint would not fit is
    cut to its centred part that does (an exact crop of the same photo, truth unchanged in
    kind), so the drawn scale is never changed.

    Attributes:
        scale: the template's scale in the image, log-uniform (2–4).
        margin: the footprint keeps this share of the image size from the borders.

    >>> v = ZoomIn().draw(np.random.default_rng(0))
    >>> 2 <= v.scale <= 4
    True
    """

    scale: tuple[float, float] = (2.0, 4.0)
    margin: float = 0.02
    name: str = "zoom-in"

    def __post_init__(self) -> None:
        _check_range("scale", self.scale, low=1.0 - 1e-9)

    def draw(self, rng: np.random.Generator) -> View:
        return View(scale=_log_uniform(rng, self.scale), offset=tuple(rng.uniform(-1, 1, 2)))

    def apply(self, pair: Pair, v: View) -> Pair:
        H, W = pair.image.shape[:2]
        s = v.scale
        S = np.diag([s, s, 1.0])
        u = (np.asarray(v.offset, float) + 1) / 2
        if not pair.present or pair.homography is None:
            o = u * (np.array([W, H]) * (s - 1))
            g = _translate(-o[0], -o[1]) @ S
            return _view(pair, g, (H, W), np.array([W / 2, H / 2]), cv2.INTER_CUBIC)
        pair = _fit_template(pair, S, (H, W), self.margin)
        poly = geometry.template_polygon(S @ pair.homography, pair.template.shape[:2])
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        m = self.margin * max(H, W)
        size = np.array([W, H], float)
        start_lo = np.maximum(0.0, hi + m - size)
        start_hi = np.maximum(start_lo, np.minimum(lo - m, size * s - size))
        o = start_lo + u * (start_hi - start_lo)
        g = _translate(-o[0], -o[1]) @ S
        return _view(pair, g, (H, W), geometry.project(g @ pair.homography, np.array(
            [[pair.template.shape[1] / 2, pair.template.shape[0] / 2]]))[0], cv2.INTER_CUBIC)

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        return self.apply(pair, self.draw(rng))


def _fit_template(pair: Pair, g: np.ndarray, image_hw: tuple[int, int], margin: float) -> Pair:
    """Cut the template to its centred part whose footprint under ``g @ homography`` fits an
    ``image_hw`` image with ``margin`` to spare (unchanged when it already fits)."""
    H, W = image_hw
    room = (1 - 2 * margin) * np.array([W, H], float)
    h, w = pair.template.shape[:2]
    x0, y0, cw, ch = 0, 0, w, h
    for _ in range(8):
        poly = geometry.template_polygon(g @ pair.homography @ _translate(x0, y0), (ch, cw))
        ext = poly.max(axis=0) - poly.min(axis=0)
        k = float(min(1.0, *(room / np.maximum(ext, 1e-9))))
        if k >= 1.0:
            break
        cw, ch = max(1, int(np.floor(cw * k))), max(1, int(np.floor(ch * k)))
        x0, y0 = (w - cw) // 2, (h - ch) // 2
    if (cw, ch) == (w, h):
        return pair
    hm = pair.homography @ _translate(x0, y0)
    tm = None if pair.template_mask is None else \
        np.ascontiguousarray(pair.template_mask[y0:y0 + ch, x0:x0 + cw])
    poly = geometry.template_polygon(hm, (ch, cw))
    Hs, Ws = pair.image.shape[:2]
    mask = geometry.mask_from_polygon(poly, (Hs, Ws))
    if pair.meta.target != "box":
        mask &= pair.mask
    return pair.copy(template=np.ascontiguousarray(pair.template[y0:y0 + ch, x0:x0 + cw]),
                     template_mask=tm, homography=hm, polygon=poly, mask=mask)


@dataclass(frozen=True)
class Screen:
    """A UI element re-rendered at another display scale: the template is the element's crop
    from its page rendered at device scale factor ``a``, the search image the page rendered at
    ``b != a`` (both drawn uniformly from ``scales``). The element's box is exact in CSS
    pixels, so the truth is that box times ``b``. Needs the screens source
    (:class:`tmatch.data.screens.ScreenSource`, ``tmatch bench --data screens``); it replaces
    the pair, so it comes first in a composition (``screen+photometric``).

    >>> Screen().draw(np.random.default_rng(0)) in [(a, b) for a in SCALES for b in SCALES if a != b]
    True
    """

    scales: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)
    name: str = "screen"

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """``(template_scale, image_scale)``, two different scales."""
        i, j = rng.choice(len(self.scales), size=2, replace=False)
        return float(self.scales[i]), float(self.scales[j])

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        rerender = getattr(ctx.source, "rendered_pair", None)
        if rerender is None:
            raise DataError(f"the screen protocol re-renders web pages: it needs the screens "
                            f"source (tmatch bench --data screens), not {ctx.source.name}")
        a, b = self.draw(rng)
        return rerender(ctx.index, a, b)


#: the device scale factors of the ``screen`` protocol.
SCALES = Screen.scales
