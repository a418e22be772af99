"""Uploaded bytes to RGB arrays, with the size checks done before any pixel is decoded.

The file's header is read first (Pillow reads it without decoding): an image whose width ×
height exceeds the limit is refused there, so a small file that declares a huge picture (a
decompression bomb) never allocates it. Decoding then uses OpenCV like :mod:`tmatch.io`
(EXIF orientation applied, as browsers show photos), falling back to Pillow for formats
OpenCV lacks; :func:`tmatch.io.as_rgb` gives the final ``(H, W, 3)`` uint8 array.
"""

from __future__ import annotations

import io as _io

import cv2
import numpy as np

from tmatch.errors import InputError
from tmatch.io import as_rgb
from tmatch.serve.errors import bad_image, too_large


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def check_bytes(data: bytes, what: str, max_bytes: int) -> None:
    """Refuse an empty upload (400) or one over ``max_bytes`` (413)."""
    if len(data) == 0:
        raise bad_image(f"{what} upload is empty")
    if len(data) > max_bytes:
        raise too_large(f"{what} is larger than {_mb(max_bytes)}")


def header_size(data: bytes, what: str, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` from the file's header; 400 when it is no image, 413 when too big."""
    from PIL import Image

    try:
        with Image.open(_io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError:
        raise too_large(f"{what} declares more than {max_pixels / 1e6:.0f} megapixels") from None
    except Exception:  # noqa: BLE001 — Pillow raises many types for a non-image
        raise bad_image(f"{what} is not an image (or is corrupt); send PNG, JPEG, WebP, BMP, "
                        "TIFF or GIF") from None
    if w < 1 or h < 1:
        raise bad_image(f"{what} has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise too_large(f"{what} is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                        f"{max_pixels / 1e6:.0f}")
    return int(w), int(h)


def decode(data: bytes, what: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Checked bytes → ``(H, W, 3)`` RGB uint8; raises :class:`~tmatch.serve.errors.ApiError`.

    >>> import cv2, numpy as np
    >>> png = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    >>> decode(png, "image", 10**6, 10**6).shape
    (5, 7, 3)
    """
    check_bytes(data, what, max_bytes)
    header_size(data, what, max_pixels)
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is not None:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    else:
        arr = _decode_pillow(data, what)
    if arr.shape[0] * arr.shape[1] > max_pixels:  # a header that understated the size
        raise too_large(f"{what} is larger than {max_pixels / 1e6:.0f} megapixels")
    try:
        return as_rgb(arr, what=what)
    except InputError as e:
        raise bad_image(str(e)) from None


def _decode_pillow(data: bytes, what: str) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(_io.BytesIO(data)) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except Exception:  # noqa: BLE001 — Pillow raises many types for a corrupt file
        raise bad_image(f"{what} cannot be decoded (corrupt or unsupported image)") from None


def encode_png(rgb: np.ndarray) -> bytes:
    """``(H, W, 3)`` RGB uint8 → PNG bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
