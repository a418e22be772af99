"""Sample pairs for the web page, cut from the embedded sample photos (:mod:`tmatch.data.samples`).

A pair is a template (an annotated object's box cropped from one photo) and a search photo.
Requests name a pair by its id from the fixed table below; no path is ever taken from a request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tmatch.serve.errors import ApiError


@dataclass(frozen=True)
class SamplePair:
    """``label`` number ``index`` (0-based, in annotation order) of photo ``source``, to be
    found in photo ``target``."""

    id: str
    title: str
    source: str
    label: str
    target: str
    index: int = 0


PAIRS: tuple[SamplePair, ...] = (
    SamplePair("motorcycle", "Motorcycle engine, other camera of a stereo pair",
               "motorcycle_left", "engine", "motorcycle_right"),
    SamplePair("astronaut", "Astronaut's face", "astronaut", "face", "astronaut"),
    SamplePair("coffee", "Coffee cup", "coffee", "cup", "coffee"),
    SamplePair("cat-eye", "Cat's eye", "chelsea", "eye", "chelsea"),
    SamplePair("rocket", "Rocket on the pad", "rocket", "rocket", "rocket"),
)


class Samples:
    """The pairs, read lazily from the sample set's cache folder (written on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._root: Path | None = None
        self._coco: dict | None = None
        self._by_id = {p.id: p for p in PAIRS}

    def listing(self) -> list[dict]:
        return [{"id": p.id, "title": p.title,
                 "template": f"/v1/samples/{p.id}/template.png",
                 "image": f"/v1/samples/{p.id}/image.jpg"} for p in PAIRS]

    def pair(self, pair_id: str) -> SamplePair:
        if pair_id not in self._by_id:
            raise ApiError(404, "unknown_sample",
                           f"no sample {pair_id!r}; choose one of: {', '.join(self._by_id)}")
        return self._by_id[pair_id]

    def _load(self) -> tuple[Path, dict]:
        with self._lock:
            if self._root is None:
                from tmatch.data.samples import sample_dir

                self._root = sample_dir()
                self._coco = json.loads((self._root / "instances.json").read_text())
            return self._root, self._coco  # type: ignore[return-value]

    def image_bytes(self, pair_id: str) -> bytes:
        """The search photo's JPEG bytes."""
        p = self.pair(pair_id)
        root, _ = self._load()
        return (root / "images" / f"{p.target}.jpg").read_bytes()

    def template_png(self, pair_id: str) -> bytes:
        """The template: the object's box cropped from its photo, as PNG."""
        p = self.pair(pair_id)
        root, coco = self._load()
        image = next(im for im in coco["images"] if im["file_name"] == f"{p.source}.jpg")
        cats = {c["id"]: c["name"] for c in coco["categories"]}
        anns = [a for a in coco["annotations"]
                if a["image_id"] == image["id"] and cats[a["category_id"]] == p.label]
        x, y, w, h = (round(v) for v in anns[p.index]["bbox"])
        photo = cv2.imread(str(root / "images" / image["file_name"]), cv2.IMREAD_COLOR)
        crop = np.ascontiguousarray(photo[y:y + h, x:x + w])
        return cv2.imencode(".png", crop)[1].tobytes()
