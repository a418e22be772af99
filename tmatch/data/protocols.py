"""Protocols: how a seed pair is turned into a training or benchmark pair, with exact truth.

A protocol is a frozen dataclass whose ``__call__(pair, rng, ctx)`` returns a new
:class:`~tmatch.data.pairs.Pair`. Names compose with ``+`` (``"homography+photometric"``), applied
left to right. :func:`make_pair` draws pair ``i`` of protocol ``p`` from a random generator seeded
by ``(seed, p, i)`` only, so runs can be sharded and resumed.

* ``seed`` — the original: exact crop, unchanged image; optionally the original's ±angle rotation
  of the search image (blank corners filled from the unrotated photo) and horizontal flip.
* ``homography`` — the search image warped so the template lands under a random scale,
  rotation, perspective and translation; polygon and mask follow exactly.
* ``photometric`` — brightness, contrast, gamma, colour, blur, noise and JPEG damage of the search
  image (albumentations).
* ``warp`` — the benchmark protocol: ``homography`` (scale 0.7–1.4, rotation ±25°, mild
  perspective) then ``photometric``.
* ``negatives`` — the template replaced by one from another photo: ``present=False``, empty mask.
* ``rotate`` — the template seen at any angle (uniform over the full circle) and a mild scale
  (log-uniform 0.8–1.25).
* ``zoom-out`` — the template is a high-resolution view: it appears at 0.25–0.5× its size
  (log-uniform); in 35% of the cases the search image is also cropped to a window smaller than
  the template on both sides (the template is larger than the whole image).
* ``zoom-in`` — the template appears at 2–4× its size (log-uniform); a template whose footprint
  would not fit the image is cut to a centred part that does.
* ``perspective`` — the planar target seen from a viewpoint tilted 25–40° away from its normal
  (uniform, in a uniform direction), a camera roll of ±30° and a scale of 0.7–1.25 at its
  centre, through a pinhole camera whose focal length is the photo's longer side.
* ``screen`` — (the screens source only) a UI element rendered at one device scale factor, the
  page at another, among 1, 1.25, 1.5, 2 (see :mod:`tmatch.data.screens`).

The geometric protocols draw their parameters with ``draw(rng, ...)`` (a small frozen dataclass,
tested for its ranges) and apply them with ``apply(pair, params)``; ``__call__`` does both.

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from tmatch import geometry
from tmatch.data.pairs import Pair, PairSource
from tmatch.errors import DataError

_BORDERS = {"blur": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT,
            "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


@dataclass(frozen=True)
class Context:
    """What a protocol step may need besides the pair: its source and index."""

    source: PairSource
    index: int
    seed: int


# -- shared geometry --------------------------------------------------------------------------
def warp_mask(mask: np.ndarray, hm: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Warp an ``(H, W)`` bool mask by a homography (tmatch convention) into ``out_hw``: a pixel
    is inside when at least half of its bilinear sample is.

    >>> m = np.zeros((8, 8), bool); m[2:4, 2:6] = True
    >>> int(warp_mask(m, np.array([[1., 0, 1], [0, 1, 0], [0, 0, 1]]), (8, 8))[2:4, 3:7].sum())
    8
    """
    w = geometry.warp_image(np.asarray(mask, np.float32), hm, out_hw)
    return w >= 0.5


def _flip_h(width: int) -> np.ndarray:
    return np.array([[-1.0, 0, width], [0, 1, 0], [0, 0, 1]])


def _warp_pair(pair: Pair, g: np.ndarray, border: str = "constant",
               fill: np.ndarray | None = None) -> Pair:
    """Warp the search image by ``g`` (old image → new image, same size); truth follows."""
    H, W = pair.image.shape[:2]
    if fill is not None and border == "constant":
        border = "reflect"  # edge pixels then keep their own colour before the fill
    image = geometry.warp_image(pair.image, g, (H, W), border=_BORDERS[border])
    if border == "blur" and fill is None:
        # A heavily blurred mirror fills the blank: no hard black edges, no sharp false copy.
        k = max(1, min(H, W) // 24)
        small = cv2.resize(image, (max(1, W // k), max(1, H // k)), interpolation=cv2.INTER_AREA)
        fill = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (W, H), interpolation=cv2.INTER_LINEAR)
    if fill is not None:
        cover = geometry.mask_from_polygon(geometry.template_polygon(g, (H, W)), (H, W))
        image = np.where(cover[:, :, None], image, fill)
    if not pair.present or pair.homography is None:
        return pair.copy(image=np.ascontiguousarray(image), mask=np.zeros((H, W), bool))
    hm = g @ pair.homography
    h, w = pair.template.shape[:2]
    poly = geometry.template_polygon(hm, (h, w))
    if pair.meta.target == "box":
        mask = geometry.mask_from_polygon(poly, (H, W))
    else:
        mask = warp_mask(pair.mask, g, (H, W))
    return pair.copy(image=np.ascontiguousarray(image), mask=mask, polygon=poly, homography=hm)


def sample_placement(rng: np.random.Generator, template_hw: tuple[int, int],
                     image_hw: tuple[int, int], scale: tuple[float, float], rotation: float,
                     perspective: float, margin: float = 0.02,
                     center: tuple[float, float] | None = None, shift: float = 0.2) -> np.ndarray:
    """A random template→image homography that keeps the whole template inside the image.

    Scale (log-uniform in ``scale``) and rotation (±``rotation`` degrees) about the template
    centre, a perspective tilt (the projective scale changes by up to ``perspective`` per image
    size, as when the whole photo is a tilted plane: small templates stay nearly affine), then a
    translation putting the template's centre at ``center`` moved by up to
    ``shift`` of the image size (anywhere when ``center`` is None), clipped so the template
    stays inside. A template that would not fit is shrunk until it does.

    Args:
        rng: the random generator.
        template_hw: ``(h, w)``.
        image_hw: ``(H, W)``.

    Returns:
        ``(3, 3)`` homography.
    """
    h, w = template_hw
    H, W = image_hw
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    a = np.deg2rad(rng.uniform(-rotation, rotation))
    c, si = np.cos(a), np.sin(a)
    pers = np.eye(3)
    pers[2, :2] = rng.uniform(-perspective, perspective, 2) / float(max(H, W))
    u = rng.uniform(-1, 1, 2)
    hm = np.array([[s * c, -s * si, 0], [s * si, s * c, 0], [0, 0, 1]]) @ pers \
        @ np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    poly = geometry.project(hm, geometry.rect_polygon(0, 0, w, h))
    ext = poly.max(axis=0) - poly.min(axis=0)
    f = min(1.0, (1 - 2 * margin) * W / max(ext[0], 1e-6), (1 - 2 * margin) * H / max(ext[1], 1e-6))
    if f < 1.0:
        hm = np.diag([f, f, 1.0]) @ hm
        poly = poly * f
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    lo_t = -lo + margin * np.array([W, H])
    hi_t = np.array([W, H]) - hi - margin * np.array([W, H])
    if center is None:
        t = lo_t + (u + 1) / 2 * (hi_t - lo_t)
    else:
        t = np.asarray(center, float) + u * shift * np.array([W, H])
    t = np.clip(t, lo_t, np.maximum(lo_t, hi_t))
    return np.array([[1, 0, t[0]], [0, 1, t[1]], [0, 0, 1]], float) @ hm


# -- the protocols ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Seed:
    """The original pair: exact crop in the unchanged image; optionally the original's
    augmentation.

    Attributes:
        angle: with probability ``rate`` the search image is rotated about its centre by up to
            ±``angle`` degrees (the template is not), the truth rotates with it.
        flip_rate: probability of flipping template, image and truth horizontally (together).
        rate: probability of the rotation (the original's ``aug_rate``).
        fill_original: fill the corners the rotation leaves blank from the unrotated photo, as
            the original did (which can show a second, unrotated copy of the target there).
    """

    angle: float = 0.0
    flip_rate: float = 0.0
    rate: float = 1.0
    fill_original: bool = True
    name: str = "seed"

    @classmethod
    def original(cls) -> Seed:
        """The original experiment's training settings: ±30°, flip 0.5, rate 0.5."""
        return cls(angle=30.0, flip_rate=0.5, rate=0.5, fill_original=True)

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        H, W = pair.image.shape[:2]
        rotate, angle, flip = rng.uniform() < self.rate, rng.uniform(-1, 1) * self.angle, \
            rng.uniform() < self.flip_rate
        if self.angle > 0 and rotate:
            a = np.deg2rad(angle)
            c, s = np.cos(a), np.sin(a)
            g = np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]]) \
                @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) \
                @ np.array([[1, 0, -W / 2], [0, 1, -H / 2], [0, 0, 1]])
            pair = _warp_pair(pair, g, fill=pair.image if self.fill_original else None)
        if flip:
            h, w = pair.template.shape[:2]
            fw = _flip_h(W)
            tm = None if pair.template_mask is None else np.ascontiguousarray(pair.template_mask[:, ::-1])
            changes = {"template": np.ascontiguousarray(pair.template[:, ::-1]),
                       "image": np.ascontiguousarray(pair.image[:, ::-1]),
                       "mask": np.ascontiguousarray(pair.mask[:, ::-1]), "template_mask": tm}
            if pair.present and pair.homography is not None:
                hm = fw @ pair.homography @ _flip_h(w)
                changes.update(homography=hm, polygon=geometry.template_polygon(hm, (h, w)))
            pair = pair.copy(**changes)
        return pair


@dataclass(frozen=True)
class Homography:
    """The search image warped so that the template appears under a random homography.

    Attributes:
        scale: range of the template's scale in the new image (log-uniform).
        rotation: largest rotation in degrees (uniform in ±rotation).
        perspective: largest perspective tilt: the projective scale changes by up to this much
            across the image's size (0.1 is mild; the template, a part of the photo, is
            distorted in proportion to its size).
        shift: the template moves by up to this share of the image size from where it was
            (the photo moves with it, so little of the canvas is left blank).
        border: how the blank outside the warped photo is filled: ``"blur"`` (a heavily
            blurred mirror: no hard edges, no sharp false copy of the target), ``"constant"``
            (black), ``"reflect"`` or ``"replicate"``.
    """

    scale: tuple[float, float] = (0.5, 2.0)
    rotation: float = 45.0
    perspective: float = 0.25
    shift: float = 0.2
    border: str = "blur"
    name: str = "homography"

    def __post_init__(self) -> None:
        if self.border not in _BORDERS:
            raise DataError(f"unknown border {self.border!r}; choose one of: {', '.join(_BORDERS)}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise DataError(f"scale range must be 0 < low <= high, got {self.scale}")

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        H, W = pair.image.shape[:2]
        if pair.present and pair.homography is not None:
            h, w = pair.template.shape[:2]
            center = np.asarray(pair.polygon, float).mean(axis=0)
            target = sample_placement(rng, (h, w), (H, W), self.scale, self.rotation,
                                      self.perspective, center=center, shift=self.shift)
            g = target @ np.linalg.inv(pair.homography)
        else:  # nothing to place: warp the whole photo about its centre
            g = sample_placement(rng, (H, W), (H, W), self.scale, self.rotation, self.perspective,
                                 margin=0.0, center=(W / 2, H / 2), shift=self.shift)
        return _warp_pair(pair, g, border=self.border)


@dataclass(frozen=True)
class Photometric:
    """Photometric damage of the search image (and optionally the template): brightness,
    contrast, gamma, colour jitter, blur, noise and JPEG compression, via albumentations.

    Attributes:
        strength: 0 (nothing) … 1 (the defaults) … 2 (harsh); scales every range.
        template: also damage the template (independently).
    """

    strength: float = 1.0
    template: bool = False
    name: str = "photometric"

    def _compose(self):
        key = (self.strength,)
        cache = _PHOTOMETRIC_CACHE
        if key not in cache:
            import albumentations as A

            k = float(self.strength)
            cache[key] = A.Compose([
                A.RandomBrightnessContrast(brightness_limit=0.25 * k, contrast_limit=0.25 * k, p=0.8),
                A.RandomGamma(gamma_limit=(100 - 30 * k, 100 + 40 * k), p=0.5),
                A.HueSaturationValue(hue_shift_limit=8 * k, sat_shift_limit=25 * k,
                                     val_shift_limit=0, p=0.5),
                A.OneOf([A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.3, 0.3 + 1.2 * k)),
                         A.MotionBlur(blur_limit=(3, 7))], p=0.3 * min(k, 1.5)),
                A.GaussNoise(std_range=(0.01, 0.01 + 0.04 * k), p=0.3 * min(k, 1.5)),
                A.ImageCompression(quality_range=(int(max(10, 90 - 55 * k)), 95), p=0.4 * min(k, 1.5)),
            ])
        return cache[key]

    def damage(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply the damage to an ``(H, W, 3)`` uint8 image, seeded from ``rng``."""
        if self.strength <= 0:
            return rgb
        comp = self._compose()
        comp.set_random_seed(int(rng.integers(0, 2**31 - 1)))
        return np.ascontiguousarray(comp(image=rgb)["image"])

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        changes = {"image": self.damage(pair.image, rng)}
        if self.template:
            changes["template"] = self.damage(pair.template, rng)
        return pair.copy(**changes)


_PHOTOMETRIC_CACHE: dict = {}


@dataclass(frozen=True)
class Negatives:
    """With probability ``rate``, replace the template by one from another photo: the pair then
    has ``present=False``, an empty mask and no polygon. ``meta.ann_id``, ``label`` and ``box``
    then describe the template (from another photo); the rest still describes the image.

    Attributes:
        rate: probability of a negative (1.0 for the ``negatives`` protocol; the original's
            ``wrong_query_rate`` is 0.2 in training).
        pool: pair indices the template may come from (e.g. the training split); all when None.
    """

    rate: float = 1.0
    pool: tuple[int, ...] | None = None
    name: str = "negatives"

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        if rng.uniform() >= self.rate:
            return pair
        src = ctx.source
        pool = self.pool if self.pool is not None else None
        n = len(pool) if pool is not None else len(src)
        key = src.image_key(ctx.index)
        other = None
        for _ in range(64):
            j = int(rng.integers(n))
            j = int(pool[j]) if pool is not None else j
            if src.image_key(j) != key:
                other = j
                break
        if other is None:
            keys = src.image_keys() if pool is None else [src.image_key(int(k)) for k in pool]
            others = [j for j, k in zip(pool if pool is not None else range(len(keys)), keys) if k != key]
            if not others:
                raise DataError(f"negatives need pairs from at least two photos; {src.name} source "
                                f"has only {key!r}")
            other = int(others[int(rng.integers(len(others)))])
        donor = src.base(other)
        H, W = pair.image.shape[:2]
        template = donor.template
        th, tw = template.shape[:2]
        if th > 0.9 * H or tw > 0.9 * W:
            # A template from a bigger photo may not fit this one: shrink it to fit (a matcher
            # must say "absent", not reject the pair as malformed).
            f = 0.9 * min(H / th, W / tw)
            template = cv2.resize(template, (max(1, round(tw * f)), max(1, round(th * f))),
                                  interpolation=cv2.INTER_AREA)
        meta = replace(pair.meta, ann_id=donor.meta.ann_id, label=donor.meta.label,
                       box=donor.meta.box)
        tmask = donor.template_mask
        if tmask is not None and tmask.shape != template.shape[:2]:
            tmask = cv2.resize(tmask.astype(np.uint8), template.shape[1::-1],
                               interpolation=cv2.INTER_NEAREST).astype(bool)
        return pair.copy(template=template, template_mask=tmask,
                         mask=np.zeros((H, W), bool), polygon=None, present=False,
                         homography=None, meta=meta)


# -- views: any angle, zoom, perspective, screens ---------------------------------------------
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


@dataclass(frozen=True)
class Chain:
    """Several protocols applied left to right under one name (``warp``)."""

    steps: tuple
    name: str = "chain"

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        for step in self.steps:
            pair = step(pair, rng, ctx)
        return pair


Protocol = Seed | Homography | Photometric | Negatives | Rotate | ZoomOut | ZoomIn | Perspective | Screen | Chain

#: The named protocols; compose names with ``+``. Entries are frozen: customise with
#: ``dataclasses.replace(PROTOCOLS["homography"], rotation=10)`` and pass the object.
PROTOCOLS: dict[str, Protocol] = {
    "seed": Seed(),
    "homography": Homography(),
    "photometric": Photometric(),
    "warp": Chain((Homography(scale=(0.7, 1.4), rotation=25.0, perspective=0.12),
                   Photometric()), name="warp"),
    "negatives": Negatives(),
    "rotate": Rotate(),
    "zoom-out": ZoomOut(),
    "zoom-in": ZoomIn(),
    "perspective": Perspective(),
    "screen": Screen(),
}


def resolve(protocol: str | Protocol | Sequence) -> tuple[str, list]:
    """``(name, steps)`` of a protocol given as ``"a+b"``, a protocol object or a list of them.

    >>> resolve("homography+photometric")[0]
    'homography+photometric'
    """
    if isinstance(protocol, str):
        names = [p.strip().lower() for p in protocol.split("+") if p.strip()]
        if not names:
            raise DataError("empty protocol name")
        bad = [n for n in names if n not in PROTOCOLS]
        if bad:
            raise DataError(f"unknown protocol {bad[0]!r}; choose from: {', '.join(PROTOCOLS)} "
                            "(compose with '+', e.g. 'homography+photometric')")
        return "+".join(names), [PROTOCOLS[n] for n in names]
    if isinstance(protocol, (list, tuple)):
        steps = []
        for p in protocol:
            steps.extend(resolve(p)[1])
        return "+".join(getattr(s, "name", type(s).__name__.lower()) for s in steps), steps
    if callable(protocol):
        return getattr(protocol, "name", type(protocol).__name__.lower()), [protocol]
    raise DataError(f"a protocol is a name like 'warp' or a protocol object, got {type(protocol).__name__}")


def _name_key(name: str, steps: list) -> int:
    """A stable 32-bit key of a protocol (its name and, for custom objects, its settings)."""
    text = name + "|" + "|".join(repr(s) for s in steps)
    return zlib.crc32(text.encode())


def make_pair(source: PairSource, index: int, protocol: str | Protocol | Sequence = "seed",
              seed: int = 0) -> Pair:
    """Pair ``index`` of ``source`` under ``protocol``, a pure function of ``(seed, protocol,
    index)`` and the source's data.

    Args:
        source: a :class:`~tmatch.data.pairs.PairSource`.
        index: ``0 <= index < len(source)``.
        protocol: a name from :data:`PROTOCOLS`, names joined by ``+``, a protocol object, or a
            list of them.
        seed: the run's seed.

    Returns:
        The :class:`~tmatch.data.pairs.Pair`; ``meta.protocol`` and ``meta.index`` are set.

    >>> from tmatch.data import open_source
    >>> src = open_source(None)
    >>> a, b = make_pair(src, 3, "warp", seed=1), make_pair(src, 3, "warp", seed=1)
    >>> bool((a.image == b.image).all()) and a.meta.protocol == "warp"
    True
    """
    name, steps = resolve(protocol)
    index = source.check_index(index)
    pair = source.base(index)
    ctx = Context(source=source, index=index, seed=int(seed))
    rng = np.random.default_rng([int(seed) & (2**63 - 1), _name_key(name, steps), index])
    for step in steps:
        pair = step(pair, rng, ctx)
    return pair.copy(meta=replace(pair.meta, protocol=name, index=index))


def split(source: PairSource, train_size: float = 0.9, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split pair indices into train and valid by photo, so no photo is in both.

    Photos are ordered by a hash of ``(seed, image key)`` and the first ``train_size`` share
    (rounded, at least one photo on each side when there are two or more) goes to train: the
    same photos land on the same side in every run, and adding photos moves few others.

    Args:
        source: the pair source.
        train_size: share of photos in train, ``0 < train_size <= 1`` (1: no valid split).
        seed: the split's seed.

    Returns:
        ``(train_indices, valid_indices)``, each sorted.

    >>> from tmatch.data import open_source
    >>> tr, va = split(open_source(None), 0.75, seed=0)
    >>> len(set(tr) & set(va)), len(tr) > len(va) > 0
    (0, True)
    """
    if not 0 < float(train_size) <= 1:
        raise DataError(f"train_size must be in (0, 1], got {train_size}")
    keys = source.image_keys()
    photos = sorted(set(keys), key=lambda k: (_hash(seed, k), k))
    n = len(photos)
    if n == 0:
        raise DataError(f"{source.name} source is empty")
    n_train = n if train_size >= 1 else round(n * float(train_size))
    if train_size < 1 and n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    train_photos = set(photos[:n_train])
    train = [i for i, k in enumerate(keys) if k in train_photos]
    valid = [i for i, k in enumerate(keys) if k not in train_photos]
    return train, valid


def _hash(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{int(seed)}:{key}".encode(), digest_size=8).digest()
