"""Converting matches for the tools people already use: COCO results files (pycocotools'
``loadRes`` / ``COCOeval``) and ``supervision.Detections``.

>>> import numpy as np, tmatch
>>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
>>> m = tmatch.load_matcher("ncc").match(img[10:40, 20:60], img)
>>> [e["bbox"] for e in to_coco_results([m], image_ids=[5])]
[[20, 10, 40, 30]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tmatch.match import Match, to_detections

__all__ = ["to_coco_results", "to_detections"]


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
