"""The classic protocols: ``seed``, ``homography``, ``photometric``, ``negatives`` and their
composition (:class:`Chain`, e.g. ``warp``), with the warping they share.

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Chain:
    """Several protocols applied left to right under one name (``warp``)."""

    steps: tuple
    name: str = "chain"

    def __call__(self, pair: Pair, rng: np.random.Generator, ctx: Context) -> Pair:
        for step in self.steps:
            pair = step(pair, rng, ctx)
        return pair
