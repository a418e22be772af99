"""One row of a batch run — a template searched in an image — and its flat (table) form.

>>> import numpy as np
>>> from tmatch.match import Match
>>> r = Row.of("icon.png", "shot.png", 1, 3, Match.absent((4, 5), method="sift"))
>>> Row.from_flat(r.flat()) == r
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from tmatch.match import Match

#: columns of the CSV and Parquet files, in order.
COLUMNS = ("template", "image", "template_id", "image_id", "method", "found", "score", "x", "y", "w", "h",
           "polygon", "mask", "image_h", "image_w", "ms", "error")


@dataclass
class Row:
    """The answer for one template in one image.

    Attributes:
        template, image: the file names as given (after expanding folders and globs).
        template_id, image_id: 1-based positions in the whole (unsharded) template and image
            lists; the COCO ``category_id`` and ``image_id`` of the row.
        method: the matcher.
        found, score: as in :class:`~tmatch.match.Match`.
        box: ``[x, y, w, h]`` or ``None``.
        polygon: ``[[x, y]] * 4`` or ``None``.
        mask: the mask as COCO RLE (``{"size": [H, W], "counts": str}``), ``None`` with an error.
        image_size: ``[H, W]`` (``None`` when the image could not be read).
        ms: the match's wall time.
        error: why there is no answer (an unreadable file, a template larger than the image…).
    """

    template: str
    image: str
    template_id: int
    image_id: int
    method: str
    found: bool = False
    score: float = 0.0
    box: list[int] | None = None
    polygon: list[list[float]] | None = None
    mask: dict[str, Any] | None = None
    image_size: list[int] | None = None
    ms: float = 0.0
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(template, image)``: what a resumed run does not redo."""
        return self.template, self.image

    @classmethod
    def of(cls, template: str, image: str, template_id: int, image_id: int, match: Match,
           mask: bool = True) -> Row:
        """The row of a :class:`~tmatch.match.Match`."""
        d = match.to_dict(mask=mask)
        return cls(str(template), str(image), int(template_id), int(image_id), d["method"], d["found"],
                   round(d["score"], 6), d["box"], d["polygon"], d.get("mask"), d["image_size"], d["ms"])

    @classmethod
    def failed(cls, template: str, image: str, template_id: int, image_id: int, method: str,
               error: str) -> Row:
        """A row that records why there is no answer."""
        return cls(str(template), str(image), int(template_id), int(image_id), method, error=str(error))

    def match(self) -> Match:
        """The row as a :class:`~tmatch.match.Match` (not for error rows)."""
        if self.image_size is None:
            raise ValueError(f"row {self.key} has no result: {self.error}")
        return Match.from_dict({"found": self.found, "score": self.score, "polygon": self.polygon,
                                "box": self.box, "mask": self.mask, "image_size": self.image_size,
                                "ms": self.ms, "method": self.method})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (one line of a ``.jsonl`` results file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def flat(self) -> dict[str, Any]:
        """One table row (:data:`COLUMNS`): box as ``x, y, w, h``, the polygon as JSON text, the
        mask as its RLE counts (its size is ``image_h, image_w``)."""
        x, y, w, h = self.box if self.box is not None else (None,) * 4
        ih, iw = self.image_size if self.image_size is not None else (None, None)
        return {"template": self.template, "image": self.image, "template_id": self.template_id,
                "image_id": self.image_id, "method": self.method, "found": bool(self.found),
                "score": float(self.score), "x": x, "y": y, "w": w, "h": h,
                "polygon": "" if self.polygon is None else json.dumps(self.polygon),
                "mask": "" if self.mask is None else str(self.mask["counts"]),
                "image_h": ih, "image_w": iw, "ms": float(self.ms), "error": self.error or ""}

    @classmethod
    def from_flat(cls, d: dict[str, Any]) -> Row:
        """Inverse of :meth:`flat` (values may be text, as read from a CSV file)."""
        def num(v: Any, kind=int) -> Any:
            return None if v is None or v == "" or v != v else kind(float(v))

        box = [num(d[k]) for k in ("x", "y", "w", "h")]
        size = [num(d["image_h"]), num(d["image_w"])]
        has_size = None not in size
        found = d["found"] if isinstance(d["found"], bool) else str(d["found"]).lower() in ("true", "1")
        return cls(str(d["template"]), str(d["image"]), num(d["template_id"]), num(d["image_id"]),
                   str(d["method"] or ""), found, float(d["score"] or 0.0),
                   box if None not in box else None,
                   json.loads(d["polygon"]) if d.get("polygon") else None,
                   {"size": size, "counts": str(d["mask"])} if has_size and d.get("mask") else None,
                   size if has_size else None, float(d["ms"] or 0.0), str(d["error"]) if d.get("error") else None)

