"""Screens: web pages we write, rendered by headless Chromium at several display scales.

A screenshot tool meets a UI element captured on one display and searched on another whose
device scale factor differs: the element is *re-rendered* (text hinted and laid out again,
vector icons rasterised again, photos resampled by the browser), not resized. This source gives
exactly that with exact truth: :func:`page` writes a page whose every element sits at an
absolute CSS box on a 4-pixel grid (so its edges are whole device pixels at scales 1, 1.25,
1.5 and 2), Chromium renders it once per scale, and the boxes Chromium reports
(``getBoundingClientRect``, dumped from the page) are checked against the layout.

Pages vary by index and seed: five layouts (an app with toolbar, sidebar and photo cards; a
form; a data table; an article with a figure; a dashboard with stat tiles and an SVG chart),
fonts (DejaVu and Liberation families), base sizes, colours, corner radii and texts. Icons are
inline SVG written here; photos are scikit-image's. Rendering happens once, at data-preparation
time, into :func:`tmatch.files.cache_root` ``/screens-v1-<hash>`` (the hash covers the pages'
HTML), and needs ``chromium`` (Debian: ``apt-get install chromium``).

Pair ``i`` is one element (items interleave the pages: item ``i`` is on page ``i % pages``
while that page has elements left). Its seed pair is the element's crop at scale 1 in its page
at scale 1; the ``screen`` protocol (:class:`tmatch.data.protocols.Screen`) asks
:meth:`ScreenSource.rendered_pair` for other scales.

>>> html, layout = page(3, seed=0)
>>> layout.kind, all(v % 4 == 0 for e in layout.elements for v in e.box)
('article', True)

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

import html as _html
import json
import os
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from tmatch import geometry
from tmatch.data.pairs import Pair, PairMeta, PairSource
from tmatch.data.screen_pages import (
    FONTS,
    GRID,
    ICONS,
    LAYOUTS,
    PHOTOS,
    SCALES,
    Element,
    Layout,
    page,
)
from tmatch.errors import DataError, InputError
from tmatch.files import atomic_dir, cache_root
from tmatch.io import write_image

VERSION = 1
#: the device scale factors every page is rendered at.

__all__ = ["FONTS", "GRID", "ICONS", "LAYOUTS", "PHOTOS", "SCALES", "Element", "Layout", "ScreenSource",
           "find_chromium", "layout_boxes", "page", "render", "screens_dir", "write_screens"]


# ------------------------------------------------------------------------------- rendering
def find_chromium() -> str:
    """The headless Chromium executable, or :class:`DataError` saying how to install it."""
    for name in (os.environ.get("TMATCH_CHROMIUM", ""), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise DataError("rendering the screens needs headless Chromium: apt-get install chromium "
                    "(or set TMATCH_CHROMIUM to the browser's path)")


def _chromium(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    exe = find_chromium()
    with tempfile.TemporaryDirectory(prefix="tmatch-chromium-") as profile:
        cmd = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", "--mute-audio",
               f"--user-data-dir={profile}", *args]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DataError(f"chromium did not finish within {timeout:.0f} s: {' '.join(args)}") from None
    if res.returncode != 0:
        tail = (res.stderr or "").strip().splitlines()[-1:] or [""]
        raise DataError(f"chromium failed (exit {res.returncode}): {tail[0]}")
    return res


def render(html_path: str | os.PathLike, size: tuple[int, int], scale: float,
           out_png: str | os.PathLike) -> Path:
    """Screenshot a page of ``size = (W, H)`` CSS pixels at device scale factor ``scale``:
    an ``(round(H * scale), round(W * scale))`` PNG."""
    W, H = size
    out = Path(out_png)
    _chromium([f"--force-device-scale-factor={scale:g}", f"--window-size={W},{H}",
               f"--screenshot={out}", Path(html_path).resolve().as_uri()])
    img = cv2.imread(str(out))
    want = (round(H * scale), round(W * scale))
    if img is None or img.shape[:2] != want:
        got = None if img is None else img.shape[:2]
        raise DataError(f"chromium rendered {Path(html_path).name} at {scale:g}x as {got}, "
                        f"expected {want}")
    return out


def layout_boxes(html_path: str | os.PathLike, size: tuple[int, int]) -> dict[str, tuple]:
    """``{element name: (x, y, w, h)}`` as Chromium lays the page out (``getBoundingClientRect``
    in CSS pixels, dumped from the page's own script)."""
    W, H = size
    res = _chromium([f"--window-size={W},{H}", "--dump-dom", Path(html_path).resolve().as_uri()])
    start = res.stdout.find('data-boxes="')
    if start < 0:
        raise DataError(f"chromium gave no element boxes for {Path(html_path).name}")
    end = res.stdout.find('"', start + len('data-boxes="'))
    rows = json.loads(_html.unescape(res.stdout[start + len('data-boxes="'):end]))
    return {r[0]: tuple(float(v) for v in r[1:]) for r in rows}


def fingerprint(pages: int, seed: int) -> str:
    """A hash of the pages' HTML and the scales: an edited page gets a new cache folder."""
    text = repr((VERSION, SCALES, [page(k, seed)[0] for k in range(pages)]))
    return f"{zlib.crc32(text.encode()):08x}"


def write_screens(out_dir: str | os.PathLike, pages: int = 16, seed: int = 0) -> Path:
    """Write and render the pages into ``out_dir``: ``page-KKK.html``, the photos,
    ``page-KKK@Sx.png`` for each scale of :data:`SCALES`, and ``screens.json`` (sizes and
    element boxes, checked against Chromium's layout). Returns ``out_dir``."""
    from tmatch.data.samples import load_photo

    find_chromium()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        img = load_photo(name)
        img = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        f = min(1.0, 480 / max(img.shape[:2]))
        img = cv2.resize(img, (round(img.shape[1] * f), round(img.shape[0] * f)),
                         interpolation=cv2.INTER_AREA)
        write_image(out / f"{name}.jpg", img)
    records = []
    for k in range(int(pages)):
        text, layout = page(k, seed)
        html_path = out / f"page-{k:03d}.html"
        html_path.write_text(text, encoding="utf-8")
        found = layout_boxes(html_path, layout.size)
        for e in layout.elements:
            got = found.get(e.name)
            if got is None or not np.allclose(got, e.box, atol=1e-3):
                raise DataError(f"page {k}: Chromium lays out {e.name} at {got}, the layout says "
                                f"{e.box}")
        for s in SCALES:
            render(html_path, layout.size, s, out / f"page-{k:03d}@{s:g}x.png")
        records.append({"file": html_path.name, "kind": layout.kind, "size": list(layout.size),
                        "elements": [asdict(e) for e in layout.elements]})
    meta = {"version": VERSION, "seed": int(seed), "scales": list(SCALES),
            "browser": _browser_version(),
            "pages": records}
    (out / "screens.json").write_text(json.dumps(meta, indent=1))
    return out


def _browser_version() -> str:
    try:
        res = subprocess.run([find_chromium(), "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
        return res.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):  # pragma: no cover
        return ""


def screens_dir(pages: int = 16, seed: int = 0) -> Path:
    """The rendered screens folder in the cache, rendered once (needs Chromium the first time;
    safe when several processes race)."""
    final = cache_root() / f"screens-v{VERSION}-{pages}p-s{seed}-{fingerprint(pages, seed)}"
    if (final / "screens.json").is_file():
        return final
    find_chromium()
    with atomic_dir(final, replace=False) as tmp:
        write_screens(tmp, pages, seed)
    return final


# ------------------------------------------------------------------------------- the source
class ScreenSource(PairSource):
    """UI elements of rendered pages (see the module's text).

    Args:
        root: a folder written by :func:`write_screens`; ``None``: the cached set of ``pages``
            pages for ``seed`` (rendered on first use).
        pages: number of pages when ``root`` is ``None``.
        seed: the pages' seed when ``root`` is ``None``.
        min_query_hw: elements with a side under this many CSS pixels are left out.
        max_side: ignored (screens are never downscaled: the scale is what is measured); kept
            for :func:`tmatch.data.open_source`'s common options.
    """

    name = "screens"

    def __init__(self, root: str | os.PathLike | None = None, pages: int = 16, seed: int = 0,
                 min_query_hw: int = 32, max_side: int = 0, cache_images: int = 8) -> None:
        super().__init__(max_side=0, min_query_hw=min_query_hw, cache_images=cache_images)
        self.root = Path(root) if root is not None else screens_dir(pages, seed)
        meta_path = self.root / "screens.json"
        if not meta_path.is_file():
            raise DataError(f"not a screens folder (no screens.json): {self.root}")
        self.meta = json.loads(meta_path.read_text())
        self.pages = self.meta["pages"]
        per_page = [[k for k, e in enumerate(p["elements"]) if min(e["box"][2:]) >= min_query_hw]
                    for p in self.pages]
        self.items: list[tuple[int, int]] = []
        for rank in range(max((len(e) for e in per_page), default=0)):
            self.items.extend((p, els[rank]) for p, els in enumerate(per_page) if rank < len(els))
        if not self.items:
            raise DataError(f"no screen element of at least {min_query_hw} px in {self.root}")

    def __len__(self) -> int:
        return len(self.items)

    def image_key(self, i: int) -> str:
        return f"page-{self.items[self.check_index(i)][0]:03d}"

    def rendered(self, page_index: int, scale: float) -> np.ndarray:
        """Page ``page_index`` rendered at device scale factor ``scale``: ``(H, W, 3)``."""
        if float(scale) not in SCALES:
            raise InputError(f"pages are rendered at scales {SCALES}, not {scale}")
        return self.load_image(self.root / f"page-{page_index:03d}@{float(scale):g}x.png")

    def rendered_pair(self, i: int, template_scale: float, image_scale: float) -> Pair:
        """Element ``i`` cut from its page at ``template_scale``, searched in the page at
        ``image_scale``; truth = the CSS box times ``image_scale`` (exact: box edges lie on
        whole device pixels at every scale).

        >>> src = ScreenSource()  # doctest: +SKIP
        >>> src.rendered_pair(0, 1.0, 2.0).homography[0, 0]  # doctest: +SKIP
        2.0
        """
        p, k = self.items[self.check_index(i)]
        el = self.pages[p]["elements"][k]
        x, y, w, h = (int(v) for v in el["box"])
        a, b = float(template_scale), float(image_scale)
        shot = self.rendered(p, a)
        tx, ty, tw, th = (round(v * a) for v in (x, y, w, h))
        template = np.ascontiguousarray(shot[ty:ty + th, tx:tx + tw])
        image = self.rendered(p, b)
        r = b / a
        hm = np.array([[r, 0.0, x * b], [0.0, r, y * b], [0.0, 0.0, 1.0]])
        poly = geometry.template_polygon(hm, (th, tw))
        mask = geometry.mask_from_polygon(poly, image.shape[:2])
        meta = PairMeta(source="screens", image_id=p, image_name=f"page-{p:03d}@{b:g}x.png",
                        ann_id=k, label=el["kind"], box=(x, y, w, h), target="box")
        return Pair(template=template, image=image, mask=mask, polygon=poly, present=True,
                    meta=meta, homography=hm)

    def base(self, i: int) -> Pair:
        """The element's crop at scale 1 in its page at scale 1."""
        return self.rendered_pair(i, 1.0, 1.0)

    def __repr__(self) -> str:
        return f"ScreenSource({len(self)} elements on {len(self.pages)} pages, {self.root})"

