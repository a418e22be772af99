"""The one result type every matcher returns.

Coordinates follow one convention across tmatch: pixel ``(x, y)`` covers the square
``[x, x + 1) × [y, y + 1)``. An exact crop at ``(x, y, w, h)`` therefore has the polygon
``(x, y), (x + w, y), (x + w, y + h), (x, y + h)`` and the box ``(x, y, w, h)``; the homography
maps template coordinates to image coordinates in that same convention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmatch import rle


@dataclass
class Match:
    """Where a template was found in a search image, or that it was not.

    Attributes:
        found: whether the matcher believes the template is present.
        score: confidence, higher is more confident (each matcher documents its scale).
        polygon: ``(4, 2)`` float array, the template's corners TL, TR, BR, BL in image
            pixels, or ``None`` when not found.
        box: ``(x, y, w, h)`` integer bounding box of the polygon clipped to the image, or
            ``None`` when not found.
        mask: ``(H, W)`` bool array at the search image's size; all False when not found.
        homography: ``(3, 3)`` template-to-image homography, or ``None`` when the matcher
            does not estimate one (or nothing was found).
        ms: wall time of the match in milliseconds.
        method: name of the matcher that produced it.
        extra: matcher-specific numbers (inlier count, scale, angle...), JSON-serialisable.

    >>> import numpy as np
    >>> m = Match.absent((4, 5), method="demo")
    >>> m.found, m.mask.shape, m.mask.any()
    (False, (4, 5), False)
    """

    found: bool
    score: float
    polygon: np.ndarray | None
    box: tuple[int, int, int, int] | None
    mask: np.ndarray
    homography: np.ndarray | None = None
    ms: float = 0.0
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def absent(cls, image_shape: tuple[int, int], score: float = 0.0, method: str = "",
               **extra: Any) -> "Match":
        """A 'not found' result with an empty ``(H, W)`` mask."""
        h, w = int(image_shape[0]), int(image_shape[1])
        return cls(found=False, score=float(score), polygon=None, box=None,
                   mask=np.zeros((h, w), dtype=bool), method=method, extra=dict(extra))

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the search image."""
        return int(self.mask.shape[0]), int(self.mask.shape[1])

    def to_dict(self, mask: bool = True) -> dict[str, Any]:
        """JSON-ready dict; the mask is stored as COCO RLE (``{"size": [H, W], "counts": str}``)."""
        out: dict[str, Any] = {
            "method": self.method,
            "found": bool(self.found),
            "score": float(self.score),
            "polygon": None if self.polygon is None else np.asarray(self.polygon, float).round(3).tolist(),
            "box": None if self.box is None else [int(v) for v in self.box],
            "homography": None if self.homography is None else np.asarray(self.homography, float).tolist(),
            "ms": round(float(self.ms), 3),
            "image_size": list(self.image_shape),
        }
        if self.extra:
            out["extra"] = _jsonable(self.extra)
        if mask:
            out["mask"] = rle.encode(self.mask)
        return out

    def to_json(self, **kwargs: Any) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Match":
        """Inverse of :meth:`to_dict` (the mask is decoded from RLE when present)."""
        h, w = d["image_size"]
        mask = rle.decode(d["mask"]) if d.get("mask") is not None else np.zeros((h, w), bool)
        return cls(
            found=bool(d["found"]), score=float(d["score"]),
            polygon=None if d.get("polygon") is None else np.asarray(d["polygon"], float),
            box=None if d.get("box") is None else tuple(int(v) for v in d["box"]),  # type: ignore[arg-type]
            mask=mask,
            homography=None if d.get("homography") is None else np.asarray(d["homography"], float),
            ms=float(d.get("ms", 0.0)), method=d.get("method", ""), extra=dict(d.get("extra", {})),
        )

    def summary(self) -> str:
        """One human-readable line: method, found, score, box, ms."""
        box = "-" if self.box is None else ",".join(str(v) for v in self.box)
        return (f"{self.method or 'match'}: found={self.found} score={self.score:.3f} "
                f"box={box} ms={self.ms:.1f}")


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v
