"""Fixtures for the data tests: the sample set and small COCO folders built from real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tmatch.data import open_source
from tmatch.io import write_image


@pytest.fixture(scope="session")
def samples():
    """The embedded sample set as a source (materialised once in the cache)."""
    return open_source(None)


def make_coco(root: Path, photos: dict[str, np.ndarray], anns: list[dict],
              categories: list[dict] | None = None, images: list[dict] | None = None) -> Path:
    """Write ``root/images/<name>`` for each photo and ``root/instances.json``.

    ``anns`` entries need ``file`` (a photo name) and ``bbox``; ``id``, ``category_id`` and
    ``segmentation`` are optional. Returns the JSON path.
    """
    (root / "images").mkdir(parents=True, exist_ok=True)
    ids = {}
    recs = []
    for k, (name, img) in enumerate(photos.items(), start=1):
        if img is not None:
            write_image(root / "images" / name, img)
        h, w = img.shape[:2] if img is not None else (100, 100)
        ids[name] = k
        recs.append({"id": k, "file_name": name, "width": w, "height": h})
    out = []
    for k, a in enumerate(anns, start=1):
        a = dict(a)
        rec = {"id": a.pop("id", k), "image_id": ids.get(a.pop("file", None), 999),
               "category_id": a.pop("category_id", 1), "iscrowd": 0}
        rec.update(a)
        out.append(rec)
    data = {"images": images if images is not None else recs, "annotations": out,
            "categories": categories or [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def coco_factory(tmp_path):
    """``coco_factory(photos, anns, **kw)`` → instances.json path in a fresh folder."""
    counter = iter(range(1000))

    def build(photos, anns, **kw) -> Path:
        return make_coco(tmp_path / f"coco{next(counter)}", photos, anns, **kw)

    return build
