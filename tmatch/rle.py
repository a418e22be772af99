"""Run-length encoding of masks.

Two formats:

* **COCO RLE** (the field's standard, via pycocotools): ``{"size": [H, W], "counts": str}``,
  column-major, alternating background/foreground run lengths starting with background.
* **The original experiment's text**: ``"H,W:start length start length ..."`` — the mask
  flattened row-major, each foreground run written as its 0-based start and its length.

>>> import numpy as np
>>> m = np.zeros((2, 3), bool); m[0, 1:] = True; m[1, 0] = True
>>> to_text(m)
'2,3:1 3'
>>> bool((from_text(to_text(m)) == m).all()) and bool((decode(encode(m)) == m).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as _coco_mask

from tmatch.errors import InputError


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of an ``(H, W)`` boolean mask, with ``counts`` as a JSON-safe string."""
    m = _check_mask(mask)
    r = _coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


def decode(rle: dict[str, Any]) -> np.ndarray:
    """``(H, W)`` bool mask from a COCO RLE dict (string/bytes counts or uncompressed list)."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a COCO RLE dict (needs 'size' and 'counts'): {e}") from None
    if isinstance(counts, list):
        r = _coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        r = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return _coco_mask.decode(r).astype(bool)


def area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of a COCO RLE, without decoding it."""
    counts = rle["counts"]
    r = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return int(_coco_mask.area(r))


def to_text(mask: np.ndarray) -> str:
    """The original experiment's format ``"H,W:start length ..."`` (row-major, 0-based)."""
    m = _check_mask(mask)
    flat = np.concatenate([[False], m.ravel(), [False]]).astype(np.int8)
    d = np.diff(flat)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    runs = np.stack([starts, ends - starts], axis=1).ravel()
    return f"{m.shape[0]},{m.shape[1]}:" + " ".join(str(int(v)) for v in runs)


def from_text(text: str) -> np.ndarray:
    """Inverse of :func:`to_text`."""
    try:
        head, sep, body = text.strip().partition(":")
        if not sep:
            raise ValueError
        h, w = (int(v) for v in head.split(","))
        nums = np.array(body.split(), dtype=np.int64)
    except ValueError:
        raise InputError(f"not an 'H,W:start length ...' mask string: {text[:40]!r}") from None
    if nums.size % 2:
        raise InputError("an 'H,W:runs' mask string needs start/length pairs (odd count found)")
    flat = np.zeros(h * w, dtype=bool)
    starts, lengths = nums[0::2], nums[1::2]
    if nums.size and (starts.min() < 0 or lengths.min() < 0 or (starts + lengths).max() > h * w):
        raise InputError(f"mask runs fall outside a {h}x{w} mask")
    for s, n in zip(starts, lengths):
        flat[s:s + n] = True
    return flat.reshape(h, w)
