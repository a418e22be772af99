"""Synthetic screens: text, buttons, panels and lines drawn with the system's TrueType fonts.

Feature matchers meet screenshots whose detail is text a few pixels high; photos alone do not
teach a descriptor what glyphs look like. :func:`render_ui` draws a random screen-like picture
(no browser needed) from a seed, with fonts from ``/usr/share/fonts`` (DejaVu, Liberation,
Noto, FreeFont when installed; PIL's bitmap font otherwise).

>>> import numpy as np
>>> img = render_ui(np.random.default_rng(0), (200, 300))
>>> img.shape, img.dtype
((200, 300, 3), dtype('uint8'))
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
_SYLLABLES = ("ka", "lo", "mi", "ter", "on", "sa", "ve", "ri", "pla", "com", "ex", "in", "ne", "to",
              "du", "gra", "sho", "pen", "fi", "le", "ar", "us", "qu", "ze", "ba", "th", "ing", "or")
_WORDS = ("File", "Edit", "View", "Help", "Save", "Cancel", "OK", "Settings", "Search", "Open",
          "Close", "Name", "Email", "Password", "Submit", "Total", "Status", "Home", "Profile",
          "Download", "Upload", "Delete", "Next", "Back", "Login", "Account", "Price", "Date")


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """TrueType/OpenType files found under :data:`FONT_DIRS`, sorted."""
    out: list[str] = []
    for d in FONT_DIRS:
        p = Path(d)
        if p.is_dir():
            out += [str(f) for f in p.rglob("*") if f.suffix.lower() in (".ttf", ".otf")]
    return tuple(sorted(out))


@lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default()


def _text(rng: np.random.Generator) -> str:
    words = []
    for _ in range(int(rng.integers(1, 6))):
        if rng.random() < 0.5:
            words.append(str(rng.choice(_WORDS)))
        else:
            w = "".join(rng.choice(_SYLLABLES, int(rng.integers(1, 4))))
            words.append(w.capitalize() if rng.random() < 0.3 else w)
    if rng.random() < 0.2:
        words.append(f"{rng.integers(0, 10000)}.{rng.integers(0, 100):02d}")
    return " ".join(words)


def _colour(rng: np.random.Generator, dark: bool) -> tuple[int, int, int]:
    base = rng.integers(0, 90, 3) if dark else rng.integers(165, 256, 3)
    return tuple(int(x) for x in base)


def render_ui(rng: np.random.Generator, hw: tuple[int, int] = (384, 512)) -> np.ndarray:
    """A random screen-like ``(H, W, 3)`` RGB uint8 picture: panels, buttons, text, rules."""
    from PIL import Image, ImageDraw

    h, w = int(hw[0]), int(hw[1])
    dark = bool(rng.random() < 0.3)
    img = Image.new("RGB", (w, h), _colour(rng, dark))
    draw = ImageDraw.Draw(img)
    fonts = font_files()
    for _ in range(int(rng.integers(2, 6))):  # panels
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        x1, y1 = x0 + int(rng.integers(20, w // 2 + 20)), y0 + int(rng.integers(20, h // 2 + 20))
        draw.rectangle([x0, y0, x1, y1], fill=_colour(rng, dark if rng.random() < 0.7 else not dark),
                       outline=_colour(rng, not dark) if rng.random() < 0.5 else None)
    for _ in range(int(rng.integers(1, 4))):  # paragraphs
        size = int(np.exp(rng.uniform(np.log(9), np.log(22))))
        font = _font(str(rng.choice(fonts)), size) if fonts else _font("", size)
        x, y, ink = int(rng.integers(0, w // 2)), int(rng.integers(0, h - size)), _colour(rng, not dark)
        for line in range(int(rng.integers(2, 12))):
            draw.text((x, y + line * int(size * 1.4)), _text(rng) + " " + _text(rng), fill=ink, font=font)
    for _ in range(int(rng.integers(15, 45))):  # text, buttons, rules
        x, y = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 8))
        kind = rng.random()
        ink = _colour(rng, not dark)
        if kind < 0.7:
            size = int(np.exp(rng.uniform(np.log(9), np.log(40))))
            font = _font(str(rng.choice(fonts)), size) if fonts else _font("", size)
            if kind < 0.2:  # a button: text on a filled rounded box
                text = str(rng.choice(_WORDS))
                box = draw.textbbox((x, y), text, font=font)
                pad = max(3, size // 3)
                draw.rounded_rectangle([box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad],
                                       radius=pad, fill=_colour(rng, rng.random() < 0.5))
                draw.text((x, y), text, fill=ink, font=font)
            else:
                draw.text((x, y), _text(rng), fill=ink, font=font)
        elif kind < 0.85:
            draw.line([x, y, x + int(rng.integers(10, w)), y], fill=ink, width=int(rng.integers(1, 3)))
        else:
            r = int(rng.integers(3, 14))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([x, y, x + 2 * r, y + 2 * r], fill=_colour(rng, rng.random() < 0.5), outline=ink)
    return np.asarray(img, np.uint8).copy()
