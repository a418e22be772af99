"""The one result type every matcher returns.

Coordinates follow one convention across tmatch: pixel ``(x, y)`` covers the square
``[x, x + 1) × [y, y + 1)``. An exact crop at ``(x, y, w, h)`` therefore has the polygon
``(x, y), (x + w, y), (x + w, y + h), (x, y + h)`` and the box ``(x, y, w, h)``; the homography
maps template coordinates to image coordinates in that same convention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmatch import rle


@dataclass
class Match:
    """Where a template was found in a search image, or that it was not.

    Attributes:
        found: whether the matcher believes the template is present.
        score: the matcher's own score, higher is surer (each matcher documents its scale;
            ``confidence`` is the one scale shared by all).
        polygon: ``(4, 2)`` float array, the template's corners TL, TR, BR, BL in image
            pixels, or ``None`` when not found.
        box: ``(x, y, w, h)`` integer bounding box of the polygon clipped to the image, or
            ``None`` when not found.
        mask: ``(H, W)`` bool array at the search image's size; all False when not found.
        homography: ``(3, 3)`` template-to-image homography, or ``None`` when the matcher
            does not estimate one (or nothing was found).
        ms: wall time of the match in milliseconds.
        method: name of the matcher that produced it.
        extra: matcher-specific numbers (inlier count, scale, angle...), JSON-serialisable;
            a 'not found' that has a reason says it under ``extra["reason"]`` (e.g. a template
            without texture) or ``extra["rejected"]`` (degenerate geometry).
        error: ``None``, or one line saying why this image could not be matched at all (a
            bad image in :meth:`~tmatch.matchers.base.Matcher.match_many`); then ``found`` is
            False.
        confidence: the probability that this answer is right (found: the polygon is where the
            template is; not found: the template is not there), the same scale for every
            matcher (:mod:`tmatch.calibration`); ``None`` for a matcher without a calibration.

    >>> import numpy as np
    >>> m = Match.absent((4, 5), method="demo")
    >>> m.found, m.mask.shape, bool(m.mask.any())
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
    error: str | None = None
    confidence: float | None = None

    @classmethod
    def failed(cls, error: str, image_shape: tuple[int, int] = (0, 0), method: str = "") -> "Match":
        """An error result: nothing could be matched, for the reason ``error`` (one line).

        >>> m = Match.failed("image is empty", method="sift")
        >>> m.found, m.error, Match.from_dict(m.to_dict()).error
        (False, 'image is empty', 'image is empty')
        """
        m = cls.absent(image_shape, method=method)
        m.error = str(error)
        return m

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
        if self.confidence is not None:
            out["confidence"] = round(float(self.confidence), 4)
        if self.extra:
            out["extra"] = _jsonable(self.extra)
        if self.error is not None:
            out["error"] = self.error
        if mask:
            out["mask"] = rle.encode(self.mask)
        return out

    @property
    def xywh(self) -> tuple[int, int, int, int] | None:
        """The box as ``(x, y, w, h)`` (the same as :attr:`box`), ``None`` when not found."""
        return None if self.box is None else tuple(int(v) for v in self.box)  # type: ignore[return-value]

    @property
    def xyxy(self) -> tuple[int, int, int, int] | None:
        """The box as ``(x1, y1, x2, y2)``, corners exclusive, ``None`` when not found.

        >>> import numpy as np
        >>> from tmatch.geometry import rect_polygon
        >>> m = Match(True, 0.9, rect_polygon(2, 3, 4, 5), (2, 3, 4, 5), np.zeros((9, 9), bool))
        >>> m.xyxy
        (2, 3, 6, 8)
        """
        if self.box is None:
            return None
        x, y, w, h = (int(v) for v in self.box)
        return x, y, x + w, y + h

    def to_coco(self, image_id: int, category_id: int = 1) -> dict[str, Any] | None:
        """This match as one entry of a COCO results file (``loadRes``/``COCOeval`` format):
        ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``, ``score`` and the mask as
        ``segmentation`` (COCO RLE). ``None`` when nothing was found: COCO results list
        detections only.

        >>> import numpy as np
        >>> from tmatch.geometry import rect_polygon
        >>> mask = np.zeros((9, 9), bool); mask[3:8, 2:6] = True
        >>> m = Match(True, 0.9, rect_polygon(2, 3, 4, 5), (2, 3, 4, 5), mask)
        >>> e = m.to_coco(image_id=7, category_id=2)
        >>> e["image_id"], e["category_id"], e["bbox"], e["score"]
        (7, 2, [2, 3, 4, 5], 0.9)
        >>> Match.absent((9, 9)).to_coco(7) is None
        True
        """
        if not self.found or self.box is None:
            return None
        return {"image_id": int(image_id), "category_id": int(category_id),
                "bbox": [int(v) for v in self.box], "score": round(float(self.score), 6),
                "segmentation": rle.encode(self.mask)}

    def to_detections(self, class_id: int = 0) -> Any:
        """This match as ``supervision.Detections`` (one row when found, none otherwise), with
        ``xyxy``, ``mask``, ``confidence`` and ``class_id``. Needs ``pip install supervision``.
        See :func:`to_detections` for several matches in one image."""
        return to_detections([self], class_ids=[class_id])

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
            error=d.get("error"),
            confidence=None if d.get("confidence") is None else float(d["confidence"]),
        )

    def summary(self) -> str:
        """One human-readable line: method, found, score, box, ms."""
        box = "-" if self.box is None else ",".join(str(v) for v in self.box)
        if self.error is not None:
            return f"{self.method or 'match'}: error: {self.error}"
        sure = "" if self.confidence is None else f" confidence={self.confidence:.2f}"
        return (f"{self.method or 'match'}: found={self.found} score={self.score:.3f}{sure} "
                f"box={box} ms={self.ms:.1f}")


def to_detections(matches: Sequence[Match], class_ids: Sequence[int] | None = None) -> Any:
    """Matches in one image as ``supervision.Detections``: a row per found match with
    ``xyxy`` ``(N, 4)``, ``mask`` ``(N, H, W)``, ``confidence`` ``(N,)`` and ``class_id`` ``(N,)``
    (``class_ids`` gives one per match, default 0), ready for supervision's annotators and
    trackers. All matches must come from the same image. Needs ``pip install supervision``.
    """
    try:
        import supervision as sv
    except ImportError:
        from tmatch.errors import TmatchError

        raise TmatchError("supervision is not installed: pip install supervision") from None
    ids = [0] * len(matches) if class_ids is None else [int(c) for c in class_ids]
    if len(ids) != len(matches):
        raise ValueError(f"{len(matches)} matches but {len(ids)} class ids")
    shapes = {m.image_shape for m in matches}
    if len(shapes) > 1:
        raise ValueError(f"matches come from images of different sizes: {sorted(shapes)}")
    keep = [(m, c) for m, c in zip(matches, ids) if m.found and m.box is not None]
    if not keep:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([m.xyxy for m, _ in keep], dtype=np.float32),
        mask=np.stack([m.mask for m, _ in keep]),
        confidence=np.array([m.score if m.confidence is None else m.confidence for m, _ in keep],
                            dtype=np.float32),
        class_id=np.array([c for _, c in keep], dtype=int),
    )


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
