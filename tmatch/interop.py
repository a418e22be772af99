"""Converting matches for the tools people already use: COCO results files (pycocotools'
``loadRes`` / ``COCOeval``) and ``supervision.Detections``.

>>> import numpy as np, tmatch
>>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
>>> m = tmatch.load_matcher("ncc").match(img[10:40, 20:60], img)
>>> [e["bbox"] for e in to_coco_results([m], image_ids=[5])]
[[20, 10, 40, 30]]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tmatch.errors import TmatchError
from tmatch.match import Match


def to_coco_results(matches: Sequence[Match], image_ids: Sequence[int],
                    category_ids: Sequence[int] | int = 1) -> list[dict[str, Any]]:
    """The found matches as a COCO results list (not-found ones are left out).

    Args:
        matches: N matches.
        image_ids: N COCO image ids, one per match.
        category_ids: one category id for all, or N of them (one per match: e.g. per template).
    """
    if len(image_ids) != len(matches):
        raise ValueError(f"{len(matches)} matches but {len(image_ids)} image ids")
    cats = [int(category_ids)] * len(matches) if isinstance(category_ids, (int, np.integer)) \
        else list(category_ids)
    if len(cats) != len(matches):
        raise ValueError(f"{len(matches)} matches but {len(cats)} category ids")
    out = []
    for m, i, c in zip(matches, image_ids, cats):
        entry = m.to_coco(i, c)
        if entry is not None:
            out.append(entry)
    return out


def to_detections(matches: Sequence[Match], class_ids: Sequence[int] | None = None) -> Any:
    """Matches in one image as ``supervision.Detections``: a row per found match with
    ``xyxy`` ``(N, 4)``, ``mask`` ``(N, H, W)``, ``confidence`` ``(N,)`` and ``class_id`` ``(N,)``
    (``class_ids`` gives one per match, default 0), ready for supervision's annotators and
    trackers. All matches must come from the same image. Needs ``pip install supervision``.
    """
    try:
        import supervision as sv
    except ImportError:
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
        confidence=np.array([m.score for m, _ in keep], dtype=np.float32),
        class_id=np.array([c for _, c in keep], dtype=int),
    )
