"""Training data of the ``neural-local`` descriptor: photos split by photo, random views of them
(full-circle rotation, 0.25×–4× scale, strong viewpoint, photometric damage) and the patch pairs
mined from their keypoints, cached under ``$TMATCH_CACHE/neural-local/`` by a key of the recipe.
:mod:`tmatch.train.neural_local` trains on them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from tmatch.errors import DataError, TmatchError
from tmatch.files import atomic_save, cache_root
from tmatch.matchers.neural_local.describe import rectified_patches
from tmatch.matchers.neural_local.detect import detect
from tmatch.matchers.neural_local.supervision import correspondences
from tmatch.train.config import TrainConfig

if TYPE_CHECKING:
    from tmatch.data.screens import ScreenSource

#: bump when the patch recipe changes: cached patch sets carry it in their key.
PATCH_VERSION = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
#: photos are read at most this long side.
BANK_SIDE = 640
VIEW = 384  # side of the second view


# ---------------------------------------------------------------------------- photos
def photo_groups(root: str | Path) -> dict[str, Path]:
    """One file per photo under ``root``: ``{photo key: file}``.

    KDE wallpapers hold one picture at many resolutions (``Name/contents/images/WxH.png``): the
    picture is the folder, and the smallest file at least 1280 px wide is read. GNOME's light
    and dark variants (``name-l``, ``name-d``) are one photo.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"training source folder not found: {root}")
    groups: dict[str, list[Path]] = {}
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file() or f.name == "screenshot.png":
            continue
        if f.parent.name == "images" and f.parent.parent.name == "contents":
            key = str(f.parent.parent.parent)
        else:
            stem = f.stem[:-2] if f.stem.endswith(("-l", "-d", "_l", "_d")) else f.stem
            key = str(f.parent / stem)
        groups.setdefault(key, []).append(f)

    def width(p: Path) -> int:
        try:
            return int(p.stem.split("x")[0])
        except ValueError:
            return 0

    out = {}
    for key, files in groups.items():
        big = sorted((f for f in files if width(f) >= 1280), key=width)
        out[key] = big[0] if big else files[0]
    return out


def split(keys: list[str], train_size: float, seed: int) -> tuple[list[str], list[str]]:
    """Photos split into training and validation by a seeded permutation (stable for a seed)."""
    keys = sorted(keys)
    order = np.random.default_rng(seed).permutation(len(keys))
    n = int(round(train_size * len(keys)))
    if len(keys) > 1:
        n = min(max(n, 1), len(keys) - 1)
    return [keys[i] for i in sorted(order[:n])], [keys[i] for i in sorted(order[n:])]


def read_gray(path: Path, side: int = BANK_SIDE, alpha: bool = False) -> np.ndarray | None:
    """A photo as gray ``(H, W)`` uint8 (or ``(H, W, 2)`` gray+alpha), longer side <= ``side``."""
    arr = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        return None
    if arr.ndim == 2:
        g, a = arr, None
    else:
        g = cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2GRAY)
        a = arr[:, :, 3] if arr.shape[2] == 4 else None
    if g.dtype != np.uint8:
        g = (g.astype(np.float64) / max(1.0, float(g.max())) * 255).astype(np.uint8)
    f = min(1.0, side / max(g.shape))
    size = (max(1, round(g.shape[1] * f)), max(1, round(g.shape[0] * f)))
    g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    if not alpha:
        return g
    a = np.full_like(g, 255) if a is None else cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    return np.dstack([g, a])


@dataclass
class Bank:
    """The photos of one split: backgrounds (gray) and cut-outs (gray + alpha)."""

    photos: list[np.ndarray]
    cutouts: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)


def build_banks(config: TrainConfig, echo: Callable[[str], None]) -> tuple[Bank, Bank]:
    """Read the config's sources, split by photo; returns (train, valid)."""
    d = config.data
    photo_keys: dict[str, Path] = {}
    cut_keys: dict[str, Path] = {}
    for s in d.sources:
        if s.path is None or s.kind in ("samples", "coco"):
            raise TmatchError(f"neural-local trains on folders of photos and cut-outs; source "
                              f"{s.describe()} is not one")
        (cut_keys if s.kind == "cutouts" else photo_keys).update(photo_groups(s.path))
    if not photo_keys:
        raise DataError("no photos found in the neural-local training sources")
    banks = []
    for part in (0, 1):
        pk = split(list(photo_keys), d.train_size, d.split_seed)[part]
        ck = split(list(cut_keys), d.train_size, d.split_seed)[part] if cut_keys else []
        photos = [g for g in (read_gray(photo_keys[k]) for k in pk) if g is not None and min(g.shape) >= 96]
        cuts = [g for g in (read_gray(cut_keys[k], 256, alpha=True) for k in ck) if g is not None]
        banks.append(Bank(photos, cuts, pk))
    echo(f"photos: {len(banks[0].photos)} train / {len(banks[1].photos)} valid; cut-outs: "
         f"{len(banks[0].cutouts)} / {len(banks[1].cutouts)}")
    return banks[0], banks[1]


def source_image(rng: np.random.Generator, bank: Bank, opts: dict) -> np.ndarray:
    """A gray picture to look at: a photo, a cut-out pasted on a photo, or a drawn screen."""
    from tmatch.data.text_ui import render_ui

    u = rng.random()
    if u < opts["text_share"]:
        return cv2.cvtColor(render_ui(rng, (384, 512)), cv2.COLOR_RGB2GRAY)
    photo = bank.photos[int(rng.integers(len(bank.photos)))]
    if u < opts["text_share"] + opts["cutout_share"] and bank.cutouts:
        out = photo.copy()
        for _ in range(int(rng.integers(1, 4))):
            cut = bank.cutouts[int(rng.integers(len(bank.cutouts)))]
            f = rng.uniform(80, 240) / max(cut.shape[:2])
            cut = cv2.resize(cut, (max(1, int(cut.shape[1] * f)), max(1, int(cut.shape[0] * f))))
            ch, cw = cut.shape[:2]
            if ch >= out.shape[0] or cw >= out.shape[1]:
                continue
            y, x = int(rng.integers(0, out.shape[0] - ch)), int(rng.integers(0, out.shape[1] - cw))
            a = cut[:, :, 1:2].astype(np.float32)[:, :, 0] / 255.0
            region = out[y:y + ch, x:x + cw].astype(np.float32)
            out[y:y + ch, x:x + cw] = (a * cut[:, :, 0] + (1 - a) * region).astype(np.uint8)
        return out
    return photo


# ------------------------------------------------------------------------- views
def photometric(rng: np.random.Generator, g: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Lighting, blur, noise and JPEG damage of a gray image."""
    x = g.astype(np.float32) / 255.0
    x = np.clip(x, 0, 1) ** float(np.exp(rng.uniform(-0.4, 0.4) * strength))
    x = x * rng.uniform(1 - 0.4 * strength, 1 + 0.4 * strength) + rng.uniform(-0.12, 0.12) * strength
    out = np.clip(x * 255.0, 0, 255)
    if rng.random() < 0.5 * strength:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.6))
    if rng.random() < 0.5 * strength:
        out = out + rng.normal(0, rng.uniform(1, 6), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5 * strength:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 95))])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def random_view(rng: np.random.Generator, src: np.ndarray, background: np.ndarray, hom: dict,
                side: int = VIEW) -> tuple[np.ndarray, np.ndarray]:
    """``src`` seen through a random homography in a ``side``² view; returns (view, H) with H
    mapping ``src`` pixel centres to the view's (OpenCV convention).

    A square around a random point of ``src`` is rotated by any angle, scaled by
    ``hom['scale']`` (log-uniform) and its corners moved by up to ``hom['corner_jitter']`` of its
    side (a change of viewpoint); what lies outside ``src`` shows ``background``.
    """
    lo, hi = hom.get("scale", (0.25, 4.0))
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    a = np.deg2rad(rng.uniform(-hom.get("rotation", 180.0), hom.get("rotation", 180.0)))
    jit = float(hom.get("corner_jitter", 0.15))
    h, w = src.shape[:2]
    cx, cy = rng.uniform(0.25 * w, 0.75 * w), rng.uniform(0.25 * h, 0.75 * h)
    half = 0.25 * side / s  # the source square that fills half the view
    sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    src_pts = np.array([cx, cy]) + half * sq
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (sq * (1 + rng.uniform(-jit, jit, (4, 2)) * 2)) @ rot.T * (0.25 * side) + side / 2
    hm = cv2.getPerspectiveTransform(src_pts.astype(np.float32), dst.astype(np.float32))
    view = cv2.warpPerspective(src, hm, (side, side), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.full(src.shape[:2], 255, np.uint8), hm, (side, side)) > 250
    bg = cv2.resize(background, (side, side), interpolation=cv2.INTER_AREA)
    return np.where(cover, view, bg), hm


def template_crop(rng: np.random.Generator, src: np.ndarray, hm: np.ndarray, side: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A template-sized crop (32–240 px a side) of ``src`` around what the ``side``² view shows,
    and the view homography from the crop's pixels. Templates are cut out of their context, so
    the patches of keypoints near their edges repeat the border where the search image shows
    more; training on such crops teaches the descriptor to rely on what is inside."""
    h, w = src.shape[:2]
    c = cv2.perspectiveTransform(np.array([[[side / 2, side / 2]]], np.float64), np.linalg.inv(hm))[0, 0]
    cw, ch = (int(min(n, rng.integers(32, 241))) for n in (w, h))
    x0 = int(np.clip(round(c[0] - cw / 2 + rng.uniform(-0.25, 0.25) * cw), 0, w - cw))
    y0 = int(np.clip(round(c[1] - ch / 2 + rng.uniform(-0.25, 0.25) * ch), 0, h - ch))
    shift = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    return np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw]), hm @ shift


# ----------------------------------------------------------------------- patches
@dataclass
class PatchSet:
    """Matching patch pairs: ``a``, ``b`` ``(N, 32, 32)`` uint8; ``pair`` ``(N,)`` view-pair id."""

    a: np.ndarray
    b: np.ndarray
    pair: np.ndarray

    def __len__(self) -> int:
        return int(len(self.a))


def mine_patches(rng: np.random.Generator, bank: Bank, pairs: int, opts: dict, hom: dict,
                 echo: Callable[[str], None] | None = None) -> PatchSet:
    """Patch pairs from ``pairs`` random view pairs of ``bank``'s pictures."""
    found = _PatchPairs(rng, opts, pairs, "view pairs", echo)
    for i in range(pairs):
        src = photometric(rng, source_image(rng, bank, opts), 0.4)
        bg = bank.photos[int(rng.integers(len(bank.photos)))]
        view, hm = random_view(rng, src, bg, hom)
        view = photometric(rng, view)
        if rng.random() < opts["crop_share"]:  # side A is a template: a small crop, nothing around it
            src, hm = template_crop(rng, src, hm, VIEW)
        found.add(i, src, view, hm)
    return found.patches("no keypoint correspondences found in the training pictures")


class _PatchPairs:
    """The mining loops' shared half: keypoints of both views, the pairs the homography confirms
    (at most ``patches_per_pair`` of them, drawn with ``rng``), their rectified patches."""

    def __init__(self, rng: np.random.Generator, opts: dict, total: int, what: str,
                 echo: Callable[[str], None] | None):
        self.rng, self.opts, self.total, self.what, self.echo = rng, opts, total, what, echo
        self.a: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        self.pair: list[np.ndarray] = []
        self.t0 = time.perf_counter()

    def add(self, i: int, first: np.ndarray, second: np.ndarray, hm: np.ndarray) -> None:
        """View pair ``i``: ``hm`` maps ``first``'s pixel centres to ``second``'s (OpenCV)."""
        o = self.opts
        ka, kb = detect(first, o["keypoints"], o["contrast"]), detect(second, o["keypoints"], o["contrast"])
        pairs_ab = correspondences(ka, kb, hm)
        if len(pairs_ab) > o["patches_per_pair"]:
            pairs_ab = pairs_ab[self.rng.choice(len(pairs_ab), o["patches_per_pair"], replace=False)]
        if len(pairs_ab) == 0:
            return
        self.a.append(rectified_patches(first, ka.take(pairs_ab[:, 0]), o["magnify"]))
        self.b.append(rectified_patches(second, kb.take(pairs_ab[:, 1]), o["magnify"]))
        self.pair.append(np.full(len(pairs_ab), i, np.int32))
        if self.echo and (i + 1) % 100 == 0:
            self.echo(f"  {i + 1}/{self.total} {self.what}, {sum(map(len, self.pair))} patch pairs "
                      f"({time.perf_counter() - self.t0:.0f} s)")

    def patches(self, none_found: str) -> PatchSet:
        if not self.a:
            raise DataError(none_found)
        return PatchSet(np.concatenate(self.a), np.concatenate(self.b), np.concatenate(self.pair))


def mine_screen_patches(rng: np.random.Generator, src: ScreenSource, pairs: int, opts: dict,
                        echo: Callable[[str], None] | None = None) -> PatchSet:
    """Patch pairs from our own pages re-rendered at two display scales.

    The pages (a :class:`~tmatch.data.screens.ScreenSource`: rendered by headless Chromium at
    device scale factors 1, 1.25, 1.5 and 2; train on a seed the benchmark does not use) are laid out on a 4-CSS-pixel grid, so a window whose corner lies on that grid starts at a
    whole device pixel at every scale and the map between two renders is exact:
    ``x_b = (x_a + 0.5) · b / a − 0.5`` (pixel centres). Each view pair is one random window
    (160–400 CSS pixels a side) of one page at two different scales, with light photometric
    damage; with probability ``opts["crop_share"]`` side A is only an element-sized part of it
    (32–160 × 24–120 CSS pixels), as a template is.
    """
    from tmatch.data.screen_pages import GRID, SCALES

    found = _PatchPairs(rng, opts, pairs, "screen pairs", echo)
    for i in range(pairs):
        page = int(rng.integers(len(src.pages)))
        a, b = (float(v) for v in rng.choice(SCALES, 2, replace=False))
        ga = cv2.cvtColor(src.rendered(page, a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(src.rendered(page, b), cv2.COLOR_RGB2GRAY)
        css_h, css_w = round(ga.shape[0] / a), round(ga.shape[1] / a)
        side = int(rng.integers(160, 401)) // GRID * GRID
        wx, wy = min(side, css_w) // GRID * GRID, min(side, css_h) // GRID * GRID
        x0 = int(rng.integers(0, max(1, (css_w - wx) // GRID + 1))) * GRID
        y0 = int(rng.integers(0, max(1, (css_h - wy) // GRID + 1))) * GRID
        xa, ya, ax, ay = x0, y0, wx, wy  # side A's window: the same, or (a template) a small part of it
        if rng.random() < opts["crop_share"]:
            ax = int(rng.integers(8, 41)) * GRID if wx > 32 else wx
            ay = int(rng.integers(6, 31)) * GRID if wy > 24 else wy
            ax, ay = min(ax, wx), min(ay, wy)
            xa = x0 + int(rng.integers(0, (wx - ax) // GRID + 1)) * GRID
            ya = y0 + int(rng.integers(0, (wy - ay) // GRID + 1)) * GRID
        wa = ga[round(ya * a):round((ya + ay) * a), round(xa * a):round((xa + ax) * a)]
        wb = gb[round(y0 * b):round((y0 + wy) * b), round(x0 * b):round((x0 + wx) * b)]
        wa, wb = photometric(rng, wa, 0.4), photometric(rng, wb, 0.4)
        r = b / a
        hm = np.array([[r, 0.0, 0.5 * r - 0.5 + (xa - x0) * b], [0.0, r, 0.5 * r - 0.5 + (ya - y0) * b],
                       [0.0, 0.0, 1.0]])
        found.add(i, wa, wb, hm)
    return found.patches("no keypoint correspondences found in the rendered pages")


def join_patches(first: PatchSet, second: PatchSet) -> PatchSet:
    """Both sets in one; the second's view-pair ids follow the first's."""
    off = int(first.pair.max()) + 1 if len(first) else 0
    return PatchSet(np.concatenate([first.a, second.a]), np.concatenate([first.b, second.b]),
                    np.concatenate([first.pair, second.pair + off]))


def cached_patches(key: dict, make: Callable[[], PatchSet], echo: Callable[[str], None]) -> PatchSet:
    """A patch set from the cache, or made and stored there (key: the recipe, as JSON)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_root() / "neural-local" / f"patches-v{PATCH_VERSION}-{digest}.npz"
    if path.is_file():
        with np.load(path) as z:
            echo(f"patches from cache {path}")
            return PatchSet(z["a"], z["b"], z["pair"])
    ps = make()
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, a=ps.a, b=ps.b, pair=ps.pair)

    atomic_save(path, write)
    return ps
