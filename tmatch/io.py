"""Reading and validating images: the one place where bad input is judged.

Everything a matcher receives has passed through :func:`as_rgb`: an ``(H, W, 3)`` RGB
``uint8`` array with finite, non-empty content. Paths (any format OpenCV reads), grayscale,
RGBA, 16-bit and float images are converted; anything else raises :class:`InputError` with a
one-line message.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from tmatch.errors import InputError
from tmatch.files import atomic_write

#: what every entry point accepts as an image: a path, an array, a ``PIL.Image`` or a torch
#: tensor (``(C, H, W)`` or ``(1, C, H, W)`` with C in 1/3/4, or ``(H, W[, C])``; float in [0, 1]
#: or integer).
ImageLike = Union[str, os.PathLike, np.ndarray, Any]

#: EXIF orientation tag -> (transpose, np.rot90 count, mirror left-right before the rotation):
#: the same turns as PIL's ``ImageOps.exif_transpose``.
_EXIF_ROTATIONS = {2: (False, 0, True), 3: (False, 2, False), 4: (False, 2, True),
                   5: (True, 0, False), 6: (False, 3, False), 7: (True, 2, False),
                   8: (False, 1, False)}


class PageWarning(UserWarning):
    """A multi-page file (TIFF) was read: only its first page is used."""


class DamageWarning(UserWarning):
    """The decoder read a file but said it is damaged (libjpeg's "Corrupt JPEG data")."""


#: whether :func:`read_image` catches what the native decoders write on the process's stderr
#: (libpng's and libjpeg's own lines, OpenCV's log) and says it in its own words. The ``tmatch``
#: command turns it on (one line per error); a library user's process, or the service's worker
#: threads sharing stderr with its log, keep the native streams untouched.
_CAPTURE_NATIVE = False


def capture_native_messages(on: bool = True) -> None:
    """Turn on (or off) the capture described at :data:`_CAPTURE_NATIVE`."""
    global _CAPTURE_NATIVE
    _CAPTURE_NATIVE = bool(on)


class _NativeStderr:
    """A context that points file descriptor 2 at a temporary file and keeps what the native
    code wrote there (``.lines``); does nothing when the capture is off."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._saved: int | None = None

    def __enter__(self) -> "_NativeStderr":
        if not _CAPTURE_NATIVE:
            return self
        import sys
        import tempfile

        try:
            sys.stderr.flush()
            self._tmp = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._tmp.fileno(), 2)
        except OSError:  # no fd 2 to point elsewhere: leave it be
            self._saved = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._saved is None:
            return
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("[") and "]" in line:  # OpenCV's log prefix "[ WARN:0@0.2] global f.cpp:793 ..."
                line = line.split("]", 1)[1].strip()
                parts = line.split(" ", 3)
                line = parts[3] if len(parts) == 4 and parts[0] == "global" else line
            if line:
                self.lines.append(line)


def read_image(source: ImageLike, what: str = "image") -> np.ndarray:
    """Read a path or take an array, and return it as ``(H, W, 3)`` RGB uint8.

    Args:
        source: a file path (JPEG/TIFF EXIF orientation applied; a multi-page file gives its
            first page and a :class:`PageWarning`), an array ``(H, W)``, ``(H, W, 1|3|4)`` of any
            numeric dtype, a ``PIL.Image`` or a torch tensor (see :func:`to_array`).
        what: the word used in error messages ("template", "image"...).

    Returns:
        ``(H, W, 3)`` uint8 RGB array.

    >>> import numpy as np
    >>> read_image(np.zeros((2, 3), np.uint16)).shape
    (2, 3, 3)
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{what} file not found: {path}")
        if path.is_dir():
            raise InputError(f"{what} path is a folder, not an image file: {path}")
        if path.stat().st_size == 0:
            raise InputError(f"{what} file is empty: {path}")
        data = np.fromfile(str(path), dtype=np.uint8)
        native = _NativeStderr()
        try:
            with native:
                arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error as e:  # e.g. a float64 multi-page TIFF
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else "decoder error"
            raise InputError(f"cannot read {what} {path}: OpenCV cannot decode it ({msg})") from None
        if arr is None:
            said = f": {native.lines[-1]}" if native.lines else ""
            raise InputError(f"cannot read {what} (not an image, or corrupt{said}): {path}")
        for line in native.lines[:1]:  # decoded, but the decoder found damage
            warnings.warn(f"{what} {path.name} is damaged ({line}); matched as decoded", DamageWarning,
                          stacklevel=2)
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        arr = _apply_exif_orientation(arr, data)
        pages = _page_count(path, data)
        if pages > 1:
            warnings.warn(f"{what} {path.name} has {pages} pages; page 1 is used", PageWarning,
                          stacklevel=2)
        return as_rgb(arr, what=f"{what} {path.name}")
    return as_rgb(to_array(source, what), what=what)


def to_array(source: Any, what: str = "image") -> Any:
    """A ``PIL.Image`` or torch tensor as a numpy ``(H, W[, C])`` array; anything else as is.

    Tensors are read as ``(C, H, W)`` (torchvision's layout) when the first axis has 1, 3 or 4
    entries and the last does not, and a leading batch axis of one is dropped.

    >>> import numpy as np
    >>> to_array(np.zeros((2, 3))).shape
    (2, 3)
    """
    if hasattr(source, "getbands") and hasattr(source, "convert"):  # PIL.Image
        if source.mode.startswith(("I;16", "I", "F")):
            return np.asarray(source)  # 16-bit / float pixels, scaled by as_rgb
        return np.asarray(source.convert("RGBA" if "A" in source.getbands() else "RGB"))
    if hasattr(source, "detach") and hasattr(source, "cpu") and hasattr(source, "numpy"):
        arr = source.detach().cpu()
        if str(getattr(arr, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            arr = arr.float()
        arr = arr.numpy()
        if arr.ndim == 4:
            if arr.shape[0] != 1:
                raise InputError(f"{what} tensor has a batch of {arr.shape[0]}; pass one image")
            arr = arr[0]
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
            arr = np.transpose(arr, (1, 2, 0))
        return arr
    return source


def _apply_exif_orientation(arr: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Turn a decoded JPEG/TIFF the way its EXIF orientation tag says (cameras store the
    sensor's rows and a tag; viewers, and the coordinates users see, follow the tag)."""
    head = bytes(data[:4])
    if not (head[:2] == b"\xff\xd8" or head in (b"II*\x00", b"MM\x00*")):
        return arr
    try:
        import io as _io

        from PIL import Image

        with Image.open(_io.BytesIO(data.tobytes())) as im:
            tag = int(im.getexif().get(0x0112, 1))
    except Exception:  # no PIL, or unreadable EXIF: the raw orientation
        return arr
    if tag not in _EXIF_ROTATIONS:
        return arr
    transpose, k, flip = _EXIF_ROTATIONS[tag]
    if transpose:
        arr = np.swapaxes(arr, 0, 1)
    if flip:
        arr = arr[:, ::-1]
    if k:
        arr = np.rot90(arr, k)
    return np.ascontiguousarray(arr)


def _page_count(path: Path, data: np.ndarray) -> int:
    if bytes(data[:4]) not in (b"II*\x00", b"MM\x00*"):
        return 1
    try:
        return max(1, int(cv2.imcount(str(path))))
    except cv2.error:
        return 1


def as_rgb(arr: np.ndarray, what: str = "image") -> np.ndarray:
    """Convert an in-memory image to ``(H, W, 3)`` RGB uint8, or raise :class:`InputError`.

    Grayscale is repeated to three channels, RGBA drops alpha, uint16 is scaled by 1/257,
    floats in ``[0, 1]`` are scaled by 255 (others are clipped to ``[0, 255]``), bool becomes
    0/255.
    """
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{what} must be a path, a numpy array, a PIL image or a torch tensor, "
                         f"got {type(arr).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InputError(f"{what} must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{what} is empty (shape {arr.shape})")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype.byteorder not in ("=", "|"):  # big- or little-endian not native: native first
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(f"{what} contains NaN or infinite pixels")
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        arr = np.clip(arr.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise InputError(f"{what} has unsupported pixel type {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def parse_roi(text: str, what: str = "ROI") -> tuple[int, int, int, int]:
    """Parse ``"x,y,w,h"`` into four ints; raise :class:`InputError` (naming ``what``) when
    malformed. Also the parser of search regions (:func:`tmatch.region.parse_region`).

    >>> parse_roi("10, 20, 30, 40")
    (10, 20, 30, 40)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        x, y, w, h = (int(p) for p in parts)  # "0.5" is not an integer: refused, not truncated
    except ValueError:
        raise InputError(f"{what} must be 'x,y,w,h' (four integers), got {text!r}") from None
    return x, y, w, h


def crop(image: np.ndarray, roi: tuple[int, int, int, int], what: str = "ROI") -> np.ndarray:
    """Cut ``roi = (x, y, w, h)`` out of an ``(H, W, C)`` image, checking it is inside.

    >>> import numpy as np
    >>> crop(np.zeros((10, 10, 3), np.uint8), (2, 3, 4, 5)).shape
    (5, 4, 3)
    """
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0:
        raise InputError(f"{what} has zero area: {w}x{h} at ({x},{y})")
    H, W = image.shape[:2]
    if x < 0 or y < 0 or x + w > W or y + h > H:
        raise InputError(f"{what} ({x},{y},{w},{h}) lies outside the {W}x{H} image")
    return np.ascontiguousarray(image[y:y + h, x:x + w])


def check_pair(template: np.ndarray, image: np.ndarray, min_size: int = 4) -> None:
    """Raise :class:`InputError` when the template is too small to be searched for.

    A template larger than the image is a valid request (a product photo searched in a webcam
    frame): the matchers search it downscaled, or answer ``found=False`` with the reason.

    Args:
        template: ``(h, w, 3)`` uint8.
        image: ``(H, W, 3)`` uint8.
        min_size: smallest template side accepted.
    """
    th, tw = template.shape[:2]
    if min(th, tw) < min_size:
        raise InputError(f"template is too small ({tw}x{th}); each side needs >= {min_size} px")


def larger_than(template_hw: tuple[int, int], image_hw: tuple[int, int]) -> bool:
    """Whether a ``(h, w)`` template exceeds the ``(H, W)`` image on either side.

    >>> larger_than((10, 50), (40, 40)), larger_than((10, 10), (40, 40))
    (True, False)
    """
    return template_hw[0] > image_hw[0] or template_hw[1] > image_hw[1]


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 image (format from the suffix); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode an image as {path.suffix!r}: {path}")
    return atomic_write(path, buf.tobytes())
