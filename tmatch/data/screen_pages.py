"""The pages behind :mod:`tmatch.data.screens`: HTML we write, every element at an absolute CSS
box on a 4-pixel grid, so its edges are whole device pixels at every scale of :data:`SCALES`.

:func:`page` is a pure function of ``(seed, index)``: five layouts (an app with toolbar, sidebar
and photo cards; a form; a data table; an article with a figure; a dashboard with stat tiles and
an SVG chart), fonts, base sizes, colours, corner radii and texts drawn from the seed; icons are
inline SVG written here; photos are scikit-image's (written beside the pages when rendered).

>>> html, layout = page(0, seed=0)
>>> layout.kind, html.startswith("<!doctype html>")
('app', True)
"""

from __future__ import annotations

import html as _html
from dataclasses import dataclass

import numpy as np

from tmatch.errors import DataError

SCALES = (1.0, 1.25, 1.5, 2.0)
GRID = 4  # CSS px: every box edge lies on this grid, a whole device pixel at every scale
LAYOUTS = ("app", "form", "table", "article", "dashboard")
FONTS = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "DejaVu Sans Condensed",
         "Liberation Sans", "Liberation Serif", "Liberation Sans Narrow", "Liberation Mono")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "immunohistochemistry",
          "hubble_deep_field", "camera", "coins", "moon")

_WORDS = ("account", "amber", "archive", "balance", "beacon", "border", "branch", "budget",
          "canvas", "cargo", "cedar", "channel", "circle", "cobalt", "comet", "copper", "delta",
          "draft", "ember", "export", "falcon", "field", "filter", "forest", "garden", "glacier",
          "harbor", "import", "index", "island", "journal", "kernel", "ledger", "lemon", "market",
          "meadow", "mirror", "module", "nectar", "north", "office", "orbit", "palette", "pilot",
          "planet", "prism", "quartz", "record", "report", "river", "saddle", "signal", "silver",
          "socket", "spring", "summit", "target", "thread", "timber", "update", "valley", "vector",
          "velvet", "window", "winter", "yellow", "zenith", "meeting", "invoice", "project",
          "review", "release", "server", "storage", "traffic", "weather", "station", "profile")

#: inline SVG icons (24×24 view box, stroked with currentColor), written for these pages.
ICONS = {
    "home": '<path d="M3 11l9-8 9 8"/><path d="M5 10v10h5v-6h4v6h5V10"/>',
    "search": '<circle cx="10" cy="10" r="6"/><path d="M15 15l6 6"/>',
    "gear": '<circle cx="12" cy="12" r="3"/><path d="M12 2v4M12 18v4M2 12h4M18 12h4M5 5l3 3'
            'M16 16l3 3M5 19l3-3M16 8l3-3"/>',
    "star": '<path d="M12 2l3 7 7 .5-5.5 4.5 2 7-6.5-4-6.5 4 2-7L2 9.5 9 9z"/>',
    "bell": '<path d="M6 17V11a6 6 0 0 1 12 0v6l2 2H4z"/><path d="M10 21h4"/>',
    "user": '<circle cx="12" cy="8" r="4"/><path d="M4 21c1-5 5-7 8-7s7 2 8 7"/>',
    "trash": '<path d="M4 6h16M9 6V3h6v3M6 6l1 15h10l1-15M10 10v8M14 10v8"/>',
    "mail": '<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/>',
    "heart": '<path d="M12 20S3 14 3 8a4.5 4.5 0 0 1 9-1 4.5 4.5 0 0 1 9 1c0 6-9 12-9 12z"/>',
    "folder": '<path d="M3 6h6l2 2h10v11H3z"/>',
    "calendar": '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>',
    "chart": '<path d="M4 20V4M4 20h16"/><path d="M8 16v-5M12 16V8M16 16v-9"/>',
    "plus": '<circle cx="12" cy="12" r="9"/><path d="M12 7v10M7 12h10"/>',
    "check": '<path d="M4 12l5 5L20 6"/>',
    "download": '<path d="M12 3v12M7 10l5 5 5-5M4 20h16"/>',
    "lock": '<rect x="5" y="11" width="14" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
    "cloud": '<path d="M7 18a5 5 0 0 1 0-10 6 6 0 0 1 11 2 4 4 0 0 1 0 8z"/>',
    "pencil": '<path d="M4 20l1-5L16 4l4 4L9 19z"/><path d="M14 6l4 4"/>',
    "map": '<path d="M3 6l6-3 6 3 6-3v15l-6 3-6-3-6 3z"/><path d="M9 3v15M15 6v15"/>',
    "camera": '<rect x="3" y="7" width="18" height="13" rx="2"/><circle cx="12" cy="13" r="4"/>'
              '<path d="M8 7l2-3h4l2 3"/>',
}


# ------------------------------------------------------------------------------- the layouts
@dataclass(frozen=True)
class Element:
    """A UI element of a page: ``box`` is ``(x, y, w, h)`` in CSS pixels (on the 4 px grid)."""

    name: str
    kind: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Layout:
    """A page's size ``(W, H)`` in CSS pixels, its layout kind and its elements."""

    index: int
    kind: str
    size: tuple[int, int]
    elements: tuple[Element, ...]


def _q(v: float) -> int:
    """Snap a CSS length to the grid."""
    return round(float(v) / GRID) * GRID


class _Page:
    """Collects absolutely placed boxes; those marked as elements become the page's templates."""

    def __init__(self, rng: np.random.Generator, width: int, height: int):
        self.rng = rng
        self.width, self.height = width, height
        self.parts: list[str] = []
        self.elements: list[Element] = []
        self.used_words: set[str] = set()
        hue = float(rng.uniform(0, 360))
        self.accent = f"hsl({hue:.0f},{rng.uniform(45, 75):.0f}%,{rng.uniform(35, 50):.0f}%)"
        self.accent2 = f"hsl({(hue + rng.uniform(90, 270)) % 360:.0f},55%,45%)"
        self.bg = f"hsl({hue:.0f},{rng.uniform(5, 25):.0f}%,{rng.uniform(94, 99):.0f}%)"
        self.panel = f"hsl({hue:.0f},{rng.uniform(10, 30):.0f}%,{rng.uniform(86, 93):.0f}%)"
        self.ink = f"hsl({hue:.0f},20%,{rng.uniform(8, 22):.0f}%)"
        self.font = FONTS[int(rng.integers(len(FONTS)))]
        self.size = int(rng.integers(13, 17))
        self.radius = int(rng.choice([0, 3, 6, 10]))
        self.filled = bool(rng.uniform() < 0.6)
        self.icons = list(ICONS)
        rng.shuffle(self.icons)

    def word(self, cap: bool = False) -> str:
        """A word not used on this page yet (texts make every element unique)."""
        free = [w for w in _WORDS if w not in self.used_words] or list(_WORDS)
        w = free[int(self.rng.integers(len(free)))]
        self.used_words.add(w)
        return w.capitalize() if cap else w

    def words(self, n: int, cap: bool = True) -> str:
        text = " ".join(self.word() for _ in range(n))
        return text[:1].upper() + text[1:] if cap else text

    def sentence(self, n: int) -> str:
        w = [_WORDS[int(self.rng.integers(len(_WORDS)))] for _ in range(n)]
        return " ".join(w).capitalize() + "."

    def icon(self, size: int = 20, color: str = "currentColor") -> str:
        name = self.icons.pop() if self.icons else "star"
        return (f'<svg width="{size}" height="{size}" viewBox="0 0 24 24" fill="none" '
                f'stroke="{color}" stroke-width="2" stroke-linecap="round" '
                f'stroke-linejoin="round">{ICONS[name]}</svg>')

    def box(self, x: float, y: float, w: float, h: float, inner: str = "", style: str = "",
            kind: str = "", name: str = "") -> tuple[int, int, int, int]:
        """Place a box; with ``kind`` it is an element (a template of this page)."""
        x, y, w, h = _q(x), _q(y), _q(w), _q(h)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > self.width or y + h > self.height:
            raise DataError(f"page layout: box ({x},{y},{w},{h}) outside the "
                            f"{self.width}x{self.height} page")
        attr = ""
        if kind:
            name = name or f"{kind}-{len(self.elements)}"
            attr = f' data-el="{_html.escape(name)}"'
            self.elements.append(Element(name, kind, (x, y, w, h)))
        self.parts.append(f'<div class="b"{attr} style="left:{x}px;top:{y}px;width:{w}px;'
                          f'height:{h}px;{style}">{inner}</div>')
        return x, y, w, h

    def button(self, x: float, y: float, text: str, h: int = 36, icon: bool = False,
               primary: bool = True) -> int:
        """A button with text (and an icon); returns its width."""
        w = _q(len(text) * self.size * 0.62 + 32 + (28 if icon else 0))
        fill = self.accent if (primary and self.filled) else "transparent"
        color = "#fff" if (primary and self.filled) else self.accent
        inner = (self.icon(18) if icon else "") + f"<span>{_html.escape(text)}</span>"
        self.box(x, y, w, h, inner, f"background:{fill};color:{color};border:2px solid "
                 f"{self.accent};border-radius:{self.radius}px;display:flex;align-items:center;"
                 "justify-content:center;gap:8px;font-weight:600;white-space:nowrap", kind="button")
        return w

    def icon_button(self, x: float, y: float, s: int = 40) -> None:
        self.box(x, y, s, s, self.icon(_q(s * 0.55)), f"color:{self.ink};border-radius:"
                 f"{self.radius}px;background:{self.panel};display:flex;align-items:center;"
                 "justify-content:center", kind="icon")

    def photo(self, name: str) -> str:
        return (f'<img src="{name}.jpg" style="width:100%;height:100%;object-fit:cover;'
                'display:block">')

    def html(self) -> str:
        css = (f"html,body{{margin:0;padding:0;overflow:hidden;background:{self.bg};"
               f"color:{self.ink};font-family:'{self.font}';font-size:{self.size}px}}"
               ".b{position:absolute;box-sizing:border-box;overflow:hidden;line-height:1.35}"
               "p{margin:0}")
        dump = ("<script>document.body.setAttribute('data-boxes',JSON.stringify("
                "[...document.querySelectorAll('[data-el]')].map(e=>{const r=e."
                "getBoundingClientRect();return [e.dataset.el,r.x,r.y,r.width,r.height]})))"
                "</script>")
        return (f"<!doctype html><html><head><meta charset='utf-8'><style>{css}</style></head>"
                f"<body>{''.join(self.parts)}{dump}</body></html>")


def _photo_names(rng: np.random.Generator, n: int) -> list[str]:
    return [str(p) for p in rng.choice(PHOTOS, size=n, replace=False)]


def _app(p: _Page) -> None:
    W, H, rng = p.width, p.height, p.rng
    tb = _q(rng.uniform(48, 60))
    p.box(0, 0, W, tb, "", f"background:{p.accent};")
    p.box(16, (tb - 32) // 2, 200, 32, f"<b style='font-size:{p.size + 5}px;color:#fff'>"
          f"{p.words(2)}</b>", "display:flex;align-items:center", kind="title")
    x = W - 16
    for _ in range(int(rng.integers(3, 5))):
        x -= 44
        p.box(x, (tb - 40) // 2, 40, 40, p.icon(22, "#fff"), "display:flex;align-items:center;"
              f"justify-content:center;border-radius:{p.radius}px", kind="icon")
    sw = _q(rng.uniform(160, 210))
    p.box(0, tb, sw, H - tb, "", f"background:{p.panel}")
    y = tb + 16
    for _ in range(int(rng.integers(4, 7))):
        p.box(8, y, sw - 16, 36, p.icon(18) + f"<span>{p.word(True)}</span>",
              "display:flex;align-items:center;gap:10px;padding-left:10px;white-space:nowrap;"
              f"border-radius:{p.radius}px", kind="nav")
        y += 40
    cols = 3 if W - sw > 640 else 2
    cw = _q((W - sw - 24 - 16 * cols) / cols)
    ch = _q(min(H - tb - 32, cw * rng.uniform(1.1, 1.4)))
    for k, name in enumerate(_photo_names(rng, cols)):
        x0, y0 = sw + 24 + k * (cw + 16), tb + 20
        ph = _q(ch * 0.45)
        p.box(x0, y0, cw, ch, "", f"background:#fff;border-radius:{p.radius}px;"
              "box-shadow:0 1px 4px rgba(0,0,0,.25)", kind="card")
        p.box(x0, y0, cw, ph, p.photo(name), kind="photo")
        p.box(x0 + 12, y0 + ph + 8, cw - 24, 28, f"<b>{p.words(2)}</b>")
        p.box(x0 + 12, y0 + ph + 36, cw - 24, ch - ph - 96, f"<p>{p.sentence(14)}</p>",
              "font-size:0.9em")
        p.button(x0 + 12, y0 + ch - 48, p.word(True), primary=k % 2 == 0)


def _form(p: _Page) -> None:
    W, H, rng = p.width, p.height, p.rng
    p.box(0, 0, W, 56, f"<b style='font-size:{p.size + 6}px'>{p.words(3)}</b>",
          f"background:{p.panel};display:flex;align-items:center;padding-left:24px",
          kind="header")
    fw = _q(W * rng.uniform(0.52, 0.6))
    y = 80
    for _ in range(min(int(rng.integers(3, 5)), (H - 80 - 72 - 12 - 36 - 16) // 76)):
        label, hint = p.words(2), p.words(3, cap=False)
        p.box(24, y, fw, 64, f"<div style='font-weight:600;margin-bottom:6px'>{label}</div>"
              f"<div style='border:1px solid #889;border-radius:{p.radius}px;height:30px;"
              f"background:#fff;color:#889;padding:6px 8px;box-sizing:border-box'>{hint}</div>",
              kind="field")
        y += 76
    for _ in range(2):
        p.box(24, y, _q(fw * 0.7), 32, f"<span style='width:16px;height:16px;border:2px solid "
              f"{p.accent};display:inline-block;border-radius:{min(p.radius, 4)}px;background:"
              f"{p.accent if rng.uniform() < 0.5 else '#fff'}'></span><span>{p.words(4)}</span>",
              "display:flex;align-items:center;gap:10px", kind="checkbox")
        y += 36
    y += 12
    x = 24
    x += p.button(x, y, p.word(True), icon=True) + 12
    p.button(x, y, p.word(True), primary=False)
    sx = 24 + fw + 32
    p.box(sx, 80, W - sx - 24, H - 104, f"<div style='margin-bottom:8px'>{p.icon(28)}</div>"
          f"<b>{p.words(2)}</b><p style='margin-top:8px'>{p.sentence(18)} {p.sentence(12)}</p>",
          f"background:{p.panel};padding:16px;border-radius:{p.radius}px", kind="panel")


def _table(p: _Page) -> None:
    W, H, rng = p.width, p.height, p.rng
    x = 24
    x += p.button(x, 16, p.word(True), icon=True) + 12
    x += p.button(x, 16, p.word(True), primary=False) + 12
    sw = 200
    p.box(W - 24 - sw, 16, sw, 36, p.icon(18) + f"<span style='color:#889'>{p.word()}</span>",
          f"border:1px solid #889;border-radius:{p.radius}px;background:#fff;display:flex;"
          "align-items:center;gap:8px;padding-left:10px", kind="search")
    tw = W - 48
    rh = _q(rng.uniform(32, 40))
    cols = [p.word(True) for _ in range(4)]
    cells = "".join(f"<span style='flex:1'>{c}</span>" for c in cols)
    y = 72
    p.box(24, y, tw, rh, cells, f"display:flex;align-items:center;padding:0 12px;font-weight:700;"
          f"background:{p.accent};color:#fff", kind="row")
    n = int((H - y - rh - 72) // rh)
    for r in range(n):
        y += rh
        vals = [p.word(True), f"{rng.integers(10, 9999)}", f"{rng.uniform(0, 100):.1f}%",
                f"2026-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"]
        cells = "".join(f"<span style='flex:1'>{c}</span>" for c in vals)
        p.box(24, y, tw, rh, cells, "display:flex;align-items:center;padding:0 12px;"
              f"background:{'#fff' if r % 2 else p.panel};border-bottom:1px solid #ccd",
              kind="row")
    y += rh + 20
    x = W - 24
    for label in ("Next", "3", "2", "1", "Prev"):
        w = 64 if len(label) > 1 else 36
        x -= w + 8
        p.box(x, y, w, 36, label, f"border:1px solid {p.accent};color:{p.accent};border-radius:"
              f"{p.radius}px;display:flex;align-items:center;justify-content:center",
              kind="page-button")
    p.box(24, y, 240, 36, f"{p.words(2)}: {rng.integers(40, 900)}",
          "display:flex;align-items:center;color:#667", kind="status")


def _article(p: _Page) -> None:
    W, H, rng = p.width, p.height, p.rng
    p.box(0, 0, W, 48, "", f"background:{p.ink}")
    x = 24
    for _ in range(4):
        word = p.word(True)
        w = _q(len(word) * p.size * 0.62 + 24)
        p.box(x, 8, w, 32, word, "color:#fff;display:flex;align-items:center;"
              "justify-content:center;white-space:nowrap", kind="link")
        x += w + 8
    mw = W - 88 - _q(rng.uniform(176, 216))  # the sidebar keeps 176–216 px
    p.box(32, 68, mw, 72, f"<h1 style='margin:0;font-size:{p.size + 14}px'>{p.words(5)}</h1>",
          kind="headline")
    y = 152
    fig_h = _q(rng.uniform(150, 190))
    name = _photo_names(rng, 1)[0]
    p.box(32, y, _q(mw * 0.45), fig_h, p.photo(name), f"border-radius:{p.radius}px",
          kind="photo")
    p.box(32 + _q(mw * 0.45) + 16, y, mw - _q(mw * 0.45) - 16, fig_h,
          f"<p>{p.sentence(16)} {p.sentence(10)} {p.sentence(12)}</p>", kind="paragraph")
    y += fig_h + 8
    p.box(32, y, _q(mw * 0.45), 24, f"<i>{p.words(4)}</i>", "font-size:0.85em;color:#667",
          kind="caption")
    y += 36
    while y + 88 < H - 16:
        p.box(32, y, mw, 84, f"<p>{p.sentence(14)} {p.sentence(16)}</p>", kind="paragraph")
        y += 96
    sx = 32 + mw + 32
    p.box(sx, 68, W - sx - 24, 36, f"<b>{p.words(2)}</b>", kind="heading")
    y = 112
    for _ in range(int(rng.integers(3, 6))):
        p.box(sx, y, W - sx - 24, 32, p.icon(16) + f"<span>{p.words(2)}</span>",
              f"background:{p.panel};border-radius:16px;display:flex;align-items:center;"
              "gap:8px;padding-left:12px;white-space:nowrap", kind="chip")
        y += 40
    p.button(sx, y + 8, p.word(True), icon=True)


def _dashboard(p: _Page) -> None:
    W, H, rng = p.width, p.height, p.rng
    p.box(24, 16, 320, 40, f"<b style='font-size:{p.size + 8}px'>{p.words(2)}</b>",
          "display:flex;align-items:center", kind="title")
    p.icon_button(W - 24 - 40, 16)
    n = 4 if W >= 720 else 3
    tw = _q((W - 48 - 16 * (n - 1)) / n)
    for k in range(n):
        x = 24 + k * (tw + 16)
        p.box(x, 72, tw, 96, f"<div style='color:{p.accent}'>{p.icon(26)}</div>"
              f"<div style='font-size:{p.size + 10}px;font-weight:700'>{rng.integers(12, 98000):,}"
              f"</div><div style='color:#667'>{p.words(2)}</div>",
              f"background:{p.panel};border-radius:{p.radius}px;padding:10px 14px", kind="tile")
    cw = _q((W - 48) * rng.uniform(0.55, 0.62))
    chh = H - 184 - 24
    bars = int(rng.integers(6, 11))
    vals = rng.uniform(0.15, 1.0, bars)
    bw = (cw - 40) / bars
    rects = "".join(f"<rect x='{20 + i * bw + bw * 0.15:.1f}' y='{(chh - 50) * (1 - v) + 20:.1f}' "
                    f"width='{bw * 0.7:.1f}' height='{(chh - 50) * v:.1f}' rx='2' "
                    f"fill='{p.accent if i % 3 else p.accent2}'/>" for i, v in enumerate(vals))
    svg = (f"<svg width='{cw}' height='{chh}'>{rects}<line x1='16' y1='{chh - 30}' "
           f"x2='{cw - 16}' y2='{chh - 30}' stroke='#889'/><text x='20' y='{chh - 10}' "
           f"font-size='{p.size - 2}' fill='#667'>{p.words(3)}</text></svg>")
    p.box(24, 184, cw, chh, svg, f"background:#fff;border-radius:{p.radius}px;"
          "box-shadow:0 1px 3px rgba(0,0,0,.2)", kind="chart")
    lx = 24 + cw + 16
    y = 184
    while y + 56 <= H - 24:
        p.box(lx, y, W - lx - 24, 52, f"<div style='color:{p.accent2}'>{p.icon(22)}</div>"
              f"<div><b>{p.words(2)}</b><div style='color:#667;font-size:0.85em'>"
              f"{rng.integers(1, 59)} min</div></div>", "display:flex;align-items:center;"
              "gap:12px;padding:0 12px;border-bottom:1px solid #dde", kind="notice")
        y += 60


_BUILDERS = {"app": _app, "form": _form, "table": _table, "article": _article,
             "dashboard": _dashboard}


def page(index: int, seed: int = 0) -> tuple[str, Layout]:
    """The HTML of page ``index`` and its layout (a pure function of ``(seed, index)``).

    The layout kind cycles through :data:`LAYOUTS`; size (640–800 × 480–560 CSS px), font,
    colours, corner radius and texts are drawn from ``(seed, index)``.
    """
    rng = np.random.default_rng([int(seed) & (2**63 - 1), 0x5C12, int(index)])
    kind = LAYOUTS[int(index) % len(LAYOUTS)]
    width, height = _q(rng.uniform(640, 800)), _q(rng.uniform(480, 560))
    p = _Page(rng, width, height)
    _BUILDERS[kind](p)
    return p.html(), Layout(int(index), kind, (width, height), tuple(p.elements))
