"""The training pairs of :mod:`tmatch.train.neural_features`: pictures (training splits only),
templates cut from them and search views through any rotation, scale, perspective and damage,
UI elements across device scales, and each pair as the network inputs the ``neural`` matcher's
own rendering builds (:func:`sample`)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tmatch.matchers.neural.render import image_features, render
from tmatch.models.features import CHANNELS, STRIDES
from tmatch.train.neural_local_data import photo_groups, split

PHOTO_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers")
STAMP_DIR = "/usr/share/tuxpaint/stamps"
#: scikit-image photos that the embedded benchmark set (:mod:`tmatch.data.samples`) does not use.
SKIMAGE_PHOTOS = ("brick", "grass", "gravel", "logo", "text", "colorwheel", "cell")
#: the matcher's coarse grid (``NeuralMatcher`` defaults) and network side.
GRID_SCALES = (0.7, 0.84, 1.0, 1.19, 1.41)
GRID_STEP = 1.19
ANGLE_STEP = 20.0
COARSE_SIDE = 56
MAX_UPSCALE = 2.0
#: device scale factors of the rendered pages, plus 0.5 (the scale-1 render halved).
PAGE_SCALES = (0.5, 1.0, 1.25, 1.5, 2.0)
BANK_SIDE = 640


# ---------------------------------------------------------------------------- pictures
@dataclass
class Pages:
    """Rendered pages: ``shots[k][scale]`` ``(H, W, 3)`` and ``elements[k]`` CSS boxes ``(x, y, w, h)``."""

    shots: list[dict[float, np.ndarray]] = field(default_factory=list)
    elements: list[list[tuple[int, int, int, int]]] = field(default_factory=list)


@dataclass
class Pictures:
    """The pictures of one split: photos ``(H, W, 3)``, stamps ``(h, w, 4)`` RGBA, pages."""

    photos: list[np.ndarray]
    stamps: list[np.ndarray]
    pages: Pages
    names: list[str] = field(default_factory=list)


def _read_rgb(path: Path, side: int, alpha: bool = False) -> np.ndarray | None:
    arr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        return None
    if arr.dtype != np.uint8:
        arr = (arr.astype(np.float64) / max(1.0, float(arr.max())) * 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        rgb, a = cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2RGB), arr[:, :, 3]
    else:
        rgb, a = cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2RGB), np.full(arr.shape[:2], 255, np.uint8)
    f = min(1.0, side / max(rgb.shape[:2]))
    size = (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if not alpha:
        return rgb
    return np.dstack([rgb, cv2.resize(a, size, interpolation=cv2.INTER_AREA)])


def _skimage_photo(name: str) -> np.ndarray:
    from tmatch.data.samples import load_photo

    img = load_photo(name)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)


def load_pages(pages: int, seed: int) -> Pages:
    """Our pages of ``seed`` (:func:`tmatch.data.screens.screens_dir`, needs Chromium the first
    time) at every scale of :data:`PAGE_SCALES`."""
    from tmatch.data.screens import screens_dir

    root = screens_dir(pages, seed)
    meta = json.loads((root / "screens.json").read_text())
    out = Pages()
    for k, p in enumerate(meta["pages"]):
        shots = {}
        for s in meta["scales"]:
            img = cv2.imread(str(root / f"page-{k:03d}@{float(s):g}x.png"))
            shots[float(s)] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        one = shots[1.0]
        shots[0.5] = cv2.resize(one, (round(one.shape[1] / 2), round(one.shape[0] / 2)), interpolation=cv2.INTER_AREA)
        out.shots.append(shots)
        out.elements.append([tuple(int(v) for v in e["box"]) for e in p["elements"]])
    return out


def load_pictures(part: int, page_seed: int | None, pages: int = 24,
                  echo: Callable[[str], None] = print) -> Pictures:
    """The pictures of split ``part`` (0 training, 1 validation): wallpapers and scikit-image
    photos split by photo (``split(keys, 0.8, 0)``), stamps split the same way, pages of
    ``page_seed`` (``None``: none)."""
    keys: dict[str, Path | str] = {}
    for d in PHOTO_DIRS:
        if Path(d).is_dir():
            keys.update(photo_groups(d))
    keys.update({f"skimage:{n}": n for n in SKIMAGE_PHOTOS})
    chosen = split(list(keys), 0.8, 0)[part]
    photos, names = [], []
    for k in chosen:
        v = keys[k]
        img = _skimage_photo(v) if isinstance(v, str) else _read_rgb(v, BANK_SIDE)
        if img is not None and min(img.shape[:2]) >= 96:
            f = min(1.0, BANK_SIDE / max(img.shape[:2]))
            if f < 1:
                img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)), interpolation=cv2.INTER_AREA)
            photos.append(np.ascontiguousarray(img))
            names.append(k)
    stamps = []
    if Path(STAMP_DIR).is_dir():
        sk = photo_groups(STAMP_DIR)
        for k in split(list(sk), 0.8, 0)[part]:
            s = _read_rgb(sk[k], 256, alpha=True)
            if s is not None and min(s.shape[:2]) >= 24:
                stamps.append(s)
    pg = load_pages(pages, page_seed) if page_seed is not None else Pages()
    echo(f"split {part}: {len(photos)} photos, {len(stamps)} stamps, {len(pg.shots)} pages")
    return Pictures(photos, stamps, pg, names)


# ------------------------------------------------------------------------------- pairs
@dataclass
class FeaturePair:
    """A template and a search image with the truth.

    Attributes:
        template: ``(h, w, 3)`` uint8.
        image: ``(H, W, 3)`` uint8.
        hom: ``(3, 3)`` template edge coords → image edge coords (the project's convention).
        scale: true scale (image px per template px).
        angle: true angle, degrees clockwise.
        kind: ``photo``, ``plain``, ``stamp``, ``screen`` or ``page``.
    """

    template: np.ndarray
    image: np.ndarray
    hom: np.ndarray
    scale: float
    angle: float
    kind: str

    def centre(self) -> np.ndarray:
        """``(2,)`` the template's centre in image edge coords."""
        h, w = self.template.shape[:2]
        p = self.hom @ np.array([w / 2.0, h / 2.0, 1.0])
        return p[:2] / p[2]


def centre_to_edge(hc: np.ndarray) -> np.ndarray:
    """A pixel-centre homography (OpenCV) as an edge-coords one."""
    t = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    return t @ hc @ np.linalg.inv(t)


def damage(rng: np.random.Generator, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """The damage chain on an ``(H, W, 3)`` image: brightness ×0.7–1.3 ±30, blur σ 0–1.5,
    noise σ 0–8, JPEG 40–90 (``strength`` scales the ranges)."""
    x = img.astype(np.float32)
    x = x * rng.uniform(1 - 0.3 * strength, 1 + 0.3 * strength) + rng.uniform(-30, 30) * strength
    sigma = rng.uniform(0, 1.5 * strength)
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x + rng.normal(0, rng.uniform(0, 8 * strength), x.shape).astype(np.float32)
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        q = int(rng.integers(40, 91)) if strength >= 1 else int(rng.integers(70, 96))
        _, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def coarse_factor(template_hw: tuple[int, int], side: int = COARSE_SIDE, max_upscale: float = MAX_UPSCALE) -> float:
    """The matcher's resize factor (:meth:`NeuralMatcher.factor`) for a search image small
    enough that ``max_side`` does not bind."""
    h, w = template_hw
    return float(min(max(side / max(h, w), side / 3.5 / min(h, w)), max_upscale))


def grid_variant(scale: float, angle: float) -> tuple[float, float]:
    """The coarse-grid variant nearest ``(scale, angle)``: the scale on the matcher's grid
    (extended geometrically by :data:`GRID_STEP`), the angle on a 20° grid, in ``(-180, 180]``."""
    k = round(math.log(scale) / math.log(GRID_STEP))
    s = GRID_SCALES[k + 2] if -2 <= k <= 2 else GRID_STEP ** k
    a = ANGLE_STEP * round(angle / ANGLE_STEP)
    a = (a + 180.0) % 360.0 - 180.0
    return float(s), float(180.0 if a == -180.0 else a)


class PairMaker:
    """Random :class:`FeaturePair` s from :class:`Pictures`.

    Args:
        pictures: the split's pictures.
        scale: true scale range (log-uniform).
        rotation: largest absolute angle, degrees (uniform).
        perspective: corner jitter, share of the template's extent.
        view_net: the search view's side range in network px (after the matcher's resize).
        shares: ``(photo, stamp, screen, page)`` shares of pair kinds (plain crops are photos).
        plain: share of photo crops chosen with grey std 12–25.
        damage: strength of the damage chain on the search view.
    """

    def __init__(self, pictures: Pictures, scale: tuple[float, float] = (0.4, 2.5), rotation: float = 180.0,
                 perspective: float = 0.06, view_net: tuple[int, int] = (160, 320),
                 shares: tuple[float, float, float, float] = (0.5, 0.2, 0.1, 0.2), plain: float = 0.3,
                 damage: float = 1.0, side: tuple[int, int] = (24, 160)):
        self.pics = pictures
        self.scale, self.rotation, self.perspective = scale, rotation, perspective
        self.view_net, self.plain, self.damage, self.side = view_net, plain, damage, side
        sh = np.asarray(shares, np.float64)
        if not pictures.stamps:
            sh[1] = 0
        if not pictures.pages.shots:
            sh[3] = 0
        self.shares = sh / sh.sum()

    def __call__(self, rng: np.random.Generator) -> FeaturePair:
        kind = ("photo", "stamp", "screen", "page")[int(rng.choice(4, p=self.shares))]
        for _ in range(20):
            p = self._page(rng) if kind == "page" else self._warped(rng, kind)
            if p is not None:
                return p
        return self._warped(rng, "photo", plain=False)

    # -------------------------------------------------------------- photos and the like
    def _picture(self, rng: np.random.Generator, kind: str) -> tuple[np.ndarray, list]:
        """A picture and the boxes of stamps pasted on it."""
        from tmatch.data.text_ui import render_ui

        if kind == "screen":
            h = int(rng.integers(320, 520))
            return render_ui(rng, (h, int(h * rng.uniform(1.0, 1.6)))), []
        photo = self.pics.photos[int(rng.integers(len(self.pics.photos)))]
        if kind != "stamp":
            return photo, []
        out, boxes = photo.copy(), []
        for _ in range(int(rng.integers(1, 4))):
            st = self.pics.stamps[int(rng.integers(len(self.pics.stamps)))]
            f = rng.uniform(48, 200) / max(st.shape[:2])
            st = cv2.resize(st, (max(1, round(st.shape[1] * f)), max(1, round(st.shape[0] * f))),
                            interpolation=cv2.INTER_AREA)
            sh, sw = st.shape[:2]
            if sh >= out.shape[0] or sw >= out.shape[1]:
                continue
            y, x = int(rng.integers(0, out.shape[0] - sh)), int(rng.integers(0, out.shape[1] - sw))
            a = st[:, :, 3:4].astype(np.float32) / 255.0
            reg = out[y:y + sh, x:x + sw].astype(np.float32)
            out[y:y + sh, x:x + sw] = (a * st[:, :, :3] + (1 - a) * reg).astype(np.uint8)
            ys, xs = np.nonzero(st[:, :, 3] > 128)
            if len(ys):
                boxes.append((x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min() + 1),
                              int(ys.max() - ys.min() + 1)))
        return out, boxes

    def _crop(self, rng: np.random.Generator, pic: np.ndarray, boxes: list, plain: bool
              ) -> tuple[int, int, int, int] | None:
        H, W = pic.shape[:2]
        lo, hi = self.side
        if boxes and rng.random() < 0.6:
            x, y, w, h = boxes[int(rng.integers(len(boxes)))]
            m = int(rng.integers(0, 8))
            x0, y0 = max(0, x - m), max(0, y - m)
            x1, y1 = min(W, x + w + m), min(H, y + h + m)
            if min(x1 - x0, y1 - y0) >= lo:
                return x0, y0, x1 - x0, y1 - y0
            return None
        tries = 20 if plain else 1
        gray = cv2.cvtColor(pic, cv2.COLOR_RGB2GRAY) if plain else None
        for _ in range(tries):
            short = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            long_ = short * float(np.exp(rng.uniform(0, np.log(2.5))))
            w, h = (long_, short) if rng.random() < 0.5 else (short, long_)
            w, h = int(min(round(w), W - 2)), int(min(round(h), H - 2))
            if min(w, h) < lo:
                continue
            x0, y0 = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            if not plain:
                return x0, y0, w, h
            sd = float(gray[y0:y0 + h, x0:x0 + w].std())
            if 12 <= sd <= 25:
                return x0, y0, w, h
        return None

    def _warped(self, rng: np.random.Generator, kind: str, plain: bool | None = None) -> FeaturePair | None:
        pic, boxes = self._picture(rng, kind)
        if plain is None:
            plain = kind == "photo" and rng.random() < self.plain
        box = self._crop(rng, pic, boxes, plain)
        if box is None:
            return None
        x0, y0, w, h = box
        template = np.ascontiguousarray(pic[y0:y0 + h, x0:x0 + w])
        s = float(np.exp(rng.uniform(*np.log(self.scale))))
        a = float(rng.uniform(-self.rotation, self.rotation))
        r = coarse_factor((h, w))
        ext = math.hypot(w, h) * s  # template's extent in the view, image px
        lo_n, hi_n = self.view_net
        vw, vh = (int(np.clip(round(ext * r * rng.uniform(1.4, 2.6)), lo_n, hi_n) / r) for _ in range(2))
        vw, vh = max(vw, round(ext) + 4), max(vh, round(ext) + 4)
        # template centre (pixel-centre coords of pic) -> view position; rotation a clockwise
        c = np.array([x0 + (w - 1) / 2.0, y0 + (h - 1) / 2.0])
        half = ext / 2.0
        pos = np.array([rng.uniform(half, max(half, vw - half)), rng.uniform(half, max(half, vh - half))])
        ca, sa = math.cos(math.radians(a)), math.sin(math.radians(a))
        lin = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1.0]]) @ np.diag([s, s, 1.0])
        sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32)
        jit = sq + rng.uniform(-self.perspective, self.perspective, (4, 2)).astype(np.float32) * 2
        pj = cv2.getPerspectiveTransform(sq, jit)
        to_unit = np.diag([1 / half, 1 / half, 1.0])
        hc = (np.array([[1, 0, pos[0]], [0, 1, pos[1]], [0, 0, 1.0]]) @ np.linalg.inv(to_unit) @ pj @ to_unit
              @ lin @ np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1.0]]))
        view = _warp(pic, hc, (vw, vh), s)
        bg = self.pics.photos[int(rng.integers(len(self.pics.photos)))]
        cover = cv2.warpPerspective(np.full(pic.shape[:2], 255, np.uint8), hc, (vw, vh)) > 250
        bgv = cv2.resize(bg, (vw, vh), interpolation=cv2.INTER_AREA)
        view = damage(rng, np.where(cover[:, :, None], view, bgv), self.damage)
        shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1.0]])  # template px -> pic px (edge coords)
        hom = centre_to_edge(hc) @ shift
        return FeaturePair(template, view, hom / hom[2, 2], s, a, "plain" if plain else kind)

    # ---------------------------------------------------------------------------- pages
    def _page(self, rng: np.random.Generator) -> FeaturePair | None:
        pg = self.pics.pages
        k = int(rng.integers(len(pg.shots)))
        ta, tb = (float(v) for v in rng.choice(PAGE_SCALES, 2, replace=True))
        rel = tb / ta
        if not self.scale[0] <= rel <= self.scale[1]:
            return None
        x, y, w, h = pg.elements[k][int(rng.integers(len(pg.elements[k])))]
        a_shot, b_shot = pg.shots[k][ta], pg.shots[k][tb]
        tx, ty, tw, th = (round(v * ta) for v in (x, y, w, h))
        tw, th = min(tw, a_shot.shape[1] - tx), min(th, a_shot.shape[0] - ty)
        if min(tw, th) < 16 or max(tw, th) > 480:
            return None
        template = np.ascontiguousarray(a_shot[ty:ty + th, tx:tx + tw])
        r = coarse_factor((th, tw))
        ext = math.hypot(tw, th) * rel
        lo_n, hi_n = self.view_net
        vw, vh = (int(np.clip(round(ext * r * rng.uniform(1.4, 2.6)), lo_n, hi_n) / r) for _ in range(2))
        H, W = b_shot.shape[:2]
        vw, vh = min(max(vw, round(ext) + 4), W), min(max(vh, round(ext) + 4), H)
        # the element's box in the b-page, in b px (edge coords)
        bx, by, bw, bh = x * tb, y * tb, tw * rel, th * rel
        ox = int(np.clip(rng.uniform(bx + bw - vw, bx), 0, W - vw))
        oy = int(np.clip(rng.uniform(by + bh - vh, by), 0, H - vh))
        view = damage(rng, np.ascontiguousarray(b_shot[oy:oy + vh, ox:ox + vw]), 0.5 * self.damage)
        hom = np.array([[rel, 0, bx - ox], [0, rel, by - oy], [0, 0, 1.0]])
        return FeaturePair(template, view, hom, rel, 0.0, "page")


def _warp(pic: np.ndarray, hc: np.ndarray, size: tuple[int, int], s: float) -> np.ndarray:
    """``pic`` through the pixel-centre homography ``hc`` into ``size = (W, H)``; a downscale is
    area-filtered first (warps only interpolate)."""
    if s < 0.9:
        f = s * 1.1
        small = cv2.resize(pic, (max(1, round(pic.shape[1] * f)), max(1, round(pic.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / pic.shape[1], small.shape[0] / pic.shape[0]
        a = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1.0]])
        return cv2.warpPerspective(small, hc @ np.linalg.inv(a), size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
    return cv2.warpPerspective(pic, hc, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ----------------------------------------------------------------------- network inputs
class _Capture:
    """A stand-in feature extractor that keeps the network input the matcher's code builds."""

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        self.x = x
        B, _, H, W = x.shape
        return [np.zeros((B, c, -(-H // s), -(-W // s)), np.float32) for c, s in zip(CHANNELS, STRIDES)]


@dataclass
class Sample:
    """One pair as network inputs.

    Attributes:
        image: ``(1, 3, Hn, Wn)`` normalised search image (resized by the matcher's factor).
        canvas: ``(1, 3, S, S)`` normalised template canvas (the nearest grid variant).
        valid: ``[(S/4, S/4), (S/8, S/8)]`` share of each cell inside the template.
        target: ``[(y, x) at stride 4, (y, x) at stride 8]``: the fractional output cell of the
            true template centre in the correlation maps.
        size: the template's shorter side, px.
    """

    image: np.ndarray
    canvas: np.ndarray
    valid: list[np.ndarray]
    target: list[np.ndarray]
    size: int


def sample(pair: FeaturePair) -> Sample:
    """The network inputs of ``pair``, built by the matcher's own rendering code."""
    h, w = pair.template.shape[:2]
    r = coarse_factor((h, w))
    cap = _Capture()
    f = image_features(cap, pair.image, r)
    image = cap.x
    vs, va = grid_variant(pair.scale, pair.angle)
    v = render(cap, pair.template, r, vs, [va])[0]
    p = pair.centre() * f.rxy - 0.5  # network centre coords
    targets = []
    for s in (4, 8):
        lo = (v.side // s) // 2
        targets.append(np.array([lo + (p[1] - (v.side - 1) / 2.0) / s, lo + (p[0] - (v.side - 1) / 2.0) / s]))
    return Sample(image, cap.x, [v.valid[1], v.valid[2]], targets, min(h, w))
