"""COCO-format pairs: one pair per annotation whose box is large enough.

The instances JSON is read once and indexed with pycocotools (``COCO.createIndex``: a dict from
image id to image record), so opening COCO val2017 (5,000 images, 36,000 annotations) takes
about a second. The original searched the image list once per annotation.

Broken records never stop an epoch: annotations without a usable box, on unknown images, with
zero size or outside their image, and images whose files are missing or unreadable are skipped
and counted (:attr:`CocoSource.skipped`, one warning line). An empty result is a
:class:`~tmatch.errors.DataError`.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tmatch.data.pairs import Pair, PairMeta, PairSource, crop_pair, scaled_box
from tmatch.errors import DataError, InputError

TARGETS = ("box", "mask")


@dataclass(frozen=True)
class CocoImage:
    """One image record of the annotation file."""

    id: int | str
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoRecord:
    """One kept annotation: the seed pair it makes is fully described by these fields."""

    ann_id: int | str
    image_id: int | str
    box: tuple[float, float, float, float]
    label: str


def read_json(path: str | os.PathLike) -> dict:
    """Load a COCO instances file; raise :class:`DataError` when missing or not COCO."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read annotation file {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{path} is not a COCO instances file (needs 'images' and 'annotations' lists)")
    return data


def find_images_dir(annotations: Path, data: dict) -> Path:
    """Guess the image folder of an annotation file: the folder that holds the first image.

    Tries ``<root>/images``, ``<root>``, and for ``annotations/instances_val2017.json`` the COCO
    layout ``<root>/../val2017`` and ``<root>/../images/val2017``.
    """
    root = annotations.parent
    stem = annotations.stem
    split = stem.split("_", 1)[1] if stem.startswith("instances_") else None
    cands = [root / "images", root]
    if split:
        cands += [root / split, root.parent / split, root.parent / "images" / split,
                  root.parent / "images"]
    cands.append(root.parent)
    first = next((im.get("file_name") for im in data.get("images", [])
                  if isinstance(im, dict) and isinstance(im.get("file_name"), str)), None)
    if first:
        for c in cands:
            if (c / first).is_file():
                return c
    for c in cands[:2]:
        if c.is_dir():
            return c
    return root


class CocoSource(PairSource):
    """Pairs from a COCO instances file and its image folder: pair ``i`` is the exact crop of
    the ``i``-th kept annotation (in file order) and its whole photo.

    Args:
        annotations: the instances JSON file.
        images: the image folder (guessed from the JSON's location when ``None``).
        max_side: photos with a longer side are downscaled to it (boxes and masks too).
        min_query_hw: annotations whose (downscaled) box is smaller on either side are left out.
        target: ``"box"`` (the original: the box is the target) or ``"mask"`` (the instance
            segmentation; falls back to the box for annotations without one).
        skip_crowd: leave out ``iscrowd`` annotations (groups, not objects).
        check_files: leave out annotations whose image file is missing (one ``stat`` each).
        name: the ``meta.source`` of the pairs (``"samples"`` for the embedded set).

    >>> from tmatch.data import samples
    >>> src = CocoSource(samples.sample_dir() / "instances.json")
    >>> p = src.base(0)
    >>> p.meta.source, p.template.shape == (p.meta.box[3], p.meta.box[2], 3)
    ('coco', True)
    """

    name = "coco"

    def __init__(self, annotations: str | os.PathLike, images: str | os.PathLike | None = None, *,
                 max_side: int = 640, min_query_hw: int = 32, target: str = "box",
                 skip_crowd: bool = True, check_files: bool = True, name: str = "coco",
                 cache_images: int = 8) -> None:
        self.name = name
        super().__init__(max_side=max_side, min_query_hw=min_query_hw, cache_images=cache_images)
        if target not in TARGETS:
            raise DataError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")
        self.target = target
        self.annotations = Path(annotations)
        data = read_json(self.annotations)
        self.images_dir = Path(images) if images is not None else find_images_dir(self.annotations, data)
        if check_files and not self.images_dir.is_dir():
            raise DataError(f"image folder not found: {self.images_dir}")
        self._index(data, skip_crowd=skip_crowd, check_files=check_files)

    # -- indexing ------------------------------------------------------------------------------
    def _index(self, data: dict, skip_crowd: bool, check_files: bool) -> None:
        from pycocotools.coco import COCO

        skip = self.skipped.add
        images: dict = {}
        for im in data["images"]:
            try:
                iid = im["id"]
                rec = CocoImage(iid, str(im["file_name"]), int(im["width"]), int(im["height"]))
                hash(iid)
            except (KeyError, TypeError, ValueError):
                skip("broken image record", str(im)[:60])
                continue
            if rec.width <= 0 or rec.height <= 0:
                skip("broken image record", rec.file_name)
                continue
            images[iid] = rec

        labels = {}
        for c in data.get("categories") or []:
            if isinstance(c, dict) and "id" in c:
                labels[c["id"]] = str(c.get("name", c["id"]))

        exists: dict = {}
        kept_anns, records, seen = [], [], set()
        for ann in data["annotations"]:
            if not isinstance(ann, dict):
                skip("broken annotation", str(ann)[:60])
                continue
            aid, iid = ann.get("id"), ann.get("image_id")
            try:
                hash(aid), hash(iid)
            except TypeError:
                aid = None
            if aid is None or aid in seen:
                skip("broken annotation" if aid is None else "duplicate annotation id", str(aid))
                continue
            img = images.get(iid)
            if img is None:
                skip("annotation of an unknown image", str(iid))
                continue
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                skip("broken annotation", f"id {aid}")
                continue
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                skip("broken annotation", f"id {aid}")
                continue
            if w <= 0 or h <= 0:
                skip("zero-size box", f"id {aid}")
                continue
            if skip_crowd and ann.get("iscrowd", 0):
                skip("crowd annotation", f"id {aid}", expected=True)
                continue
            # Clip to the image; a box mostly outside it is broken.
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(img.width), x + w), min(float(img.height), y + h)
            if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < 0.5 * w * h:
                skip("box outside image", f"id {aid}")
                continue
            s = self.scale_for(img.width, img.height)
            if min(x1 - x0, y1 - y0) * s < self.min_query_hw:
                skip(f"box under min_query_hw={self.min_query_hw}", expected=True)
                continue
            if check_files:
                ok = exists.get(iid)
                if ok is None:
                    ok = exists[iid] = (self.images_dir / img.file_name).is_file()
                if not ok:
                    skip("missing image file", img.file_name)
                    continue
            seen.add(aid)
            kept_anns.append(ann)
            records.append(CocoRecord(aid, iid, (x0, y0, x1 - x0, y1 - y0), labels.get(ann.get("category_id"), "")))

        self.records: list[CocoRecord] = records
        self.images: dict = images
        self.labels: dict = labels
        self._keys = [str(r.image_id) for r in records]
        # pycocotools' index (image id -> record, annotation id -> annotation), kept for masks.
        self.coco = COCO()
        self.coco.dataset = {"images": [im for im in data["images"] if isinstance(im, dict)
                                        and im.get("id") in images],
                             "annotations": kept_anns,
                             "categories": [c for c in data.get("categories") or [] if isinstance(c, dict)]}
        with contextlib.redirect_stdout(_io.StringIO()):
            self.coco.createIndex()
        self.skipped.log()
        if not records:
            raise DataError(f"no usable annotations in {self.annotations} "
                            f"({len(data['annotations'])} in the file); {self.skipped.summary()}")

    # -- PairSource ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def image_key(self, i: int) -> str:
        return self._keys[i]

    def image_keys(self) -> list[str]:
        return list(self._keys)

    def base(self, i: int) -> Pair:
        return self.first_good(i, self._load)

    def _load(self, j: int) -> Pair:
        rec = self.records[j]
        info = self.images[rec.image_id]
        img = self.load_image(self.images_dir / info.file_name)
        H, W = img.shape[:2]
        sx, sy = W / info.width, H / info.height
        box = scaled_box(rec.box, sx, (H, W), sy=sy)
        if min(box[2], box[3]) < min(self.min_query_hw, 4) or box[2] <= 0:
            raise InputError(f"box {rec.box} lies outside the {W}x{H} image {info.file_name}")
        mask = self._segmentation(rec, (H, W), sx, sy) if self.target == "mask" else None
        meta = PairMeta(source=self.name, image_id=rec.image_id, image_name=info.file_name,
                        ann_id=rec.ann_id, label=rec.label, box=box, index=j)
        return crop_pair(img, box, meta, mask=mask)

    def _segmentation(self, rec: CocoRecord, hw: tuple[int, int], sx: float, sy: float
                      ) -> np.ndarray | None:
        """The instance mask ``(H, W)`` at the loaded image's size, or ``None`` (box target)."""
        ann = self.coco.anns.get(rec.ann_id)
        seg = ann.get("segmentation") if ann else None
        try:
            with warnings.catch_warnings():  # pycocotools' decode warns under numpy 2
                warnings.simplefilter("ignore", DeprecationWarning)
                return self._decode(ann, seg, hw, sx, sy)
        except (ValueError, TypeError, KeyError, IndexError):
            self.skipped.add("no usable segmentation (box used)", f"id {rec.ann_id}")
            return None

    def _decode(self, ann: dict, seg, hw: tuple[int, int], sx: float, sy: float) -> np.ndarray:
        from pycocotools import mask as mask_utils

        H, W = hw
        if isinstance(seg, list) and seg:
            polys = [[float(v) * (sx if k % 2 == 0 else sy) for k, v in enumerate(p)]
                     for p in seg if isinstance(p, list) and len(p) >= 6]
            if not polys:
                raise ValueError("no polygon with 3 points")
            rles = mask_utils.frPyObjects(polys, H, W)
            return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        if isinstance(seg, dict):
            m = self.coco.annToMask(ann)
            if m.shape != (H, W):
                m = cv2.resize(m.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) >= 0.5
            return m.astype(bool)
        raise ValueError("no segmentation")
