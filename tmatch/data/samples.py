"""The embedded sample set: photos that scikit-image ships, annotated by hand, as a COCO folder.

``write_samples(out_dir)`` writes ``out_dir/images/*.jpg`` and ``out_dir/instances.json`` (boxes,
polygon segmentations, categories) without any download; :func:`sample_dir` materialises it once
in a cache folder (``$TMATCH_CACHE/samples-v<N>`` or ``~/.cache/tmatch/samples-v<N>``) so that
``open_source(None)`` and every command have an offline default.

The outlines were drawn by looking at the photos on a pixel grid: polygons of about ten points,
ellipses for round things (coins, eyes, wheels). Photos wider than 640 px are stored at 640 px
and their annotations scaled with them; grayscale photos are stored as grayscale JPEGs, as in
COCO. Boxes are the polygons' extents (all at least 32 px on both sides).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tmatch.errors import DataError
from tmatch.files import atomic_dir, atomic_write, cache_root

#: bump when photos or annotations change: the cache folder name includes it.
VERSION = 1
MAX_SIDE = 640


@dataclass(frozen=True)
class SampleObject:
    """One hand-drawn object: its label and outline ``(N, 2)`` in the photo's own pixels."""

    label: str
    polygon: tuple[tuple[float, float], ...]


def ellipse(label: str, cx: float, cy: float, rx: float, ry: float, n: int = 16) -> SampleObject:
    """An ellipse outline of ``n`` points (round objects: coins, eyes, wheels)."""
    t = np.arange(n) * 2 * np.pi / n
    pts = tuple((round(cx + rx * np.cos(a), 1), round(cy + ry * np.sin(a), 1)) for a in t)
    return SampleObject(label, pts)


def poly(label: str, *points: tuple[float, float]) -> SampleObject:
    return SampleObject(label, tuple((float(x), float(y)) for x, y in points))


def rect(label: str, x0: float, y0: float, x1: float, y1: float) -> SampleObject:
    return poly(label, (x0, y0), (x1, y0), (x1, y1), (x0, y1))


#: photo name (a scikit-image loader) -> objects, coordinates in the original photo.
ANNOTATIONS: dict[str, list[SampleObject]] = {
    "astronaut": [
        poly("face", (160, 60), (180, 25), (215, 12), (255, 18), (275, 45), (278, 90), (268, 130),
             (245, 160), (215, 168), (185, 150), (165, 115)),
        ellipse("patch", 170, 385, 40, 40),
        poly("shuttle", (398, 5), (420, 5), (430, 40), (440, 95), (455, 200), (470, 255), (460, 275),
             (375, 275), (355, 230), (375, 120), (395, 40)),
        poly("helmet", (280, 440), (300, 385), (340, 352), (400, 343), (455, 358), (490, 390),
             (505, 440), (505, 511), (275, 511)),
        poly("flag", (0, 0), (60, 0), (80, 60), (95, 160), (100, 230), (75, 300), (0, 300)),
        rect("badge", 276, 338, 330, 374),
    ],
    "coffee": [
        poly("cup", (178, 75), (200, 35), (250, 18), (310, 18), (370, 35), (405, 80), (395, 180),
             (370, 235), (320, 260), (260, 265), (215, 250), (190, 210), (175, 130)),
        poly("handle", (198, 240), (250, 230), (256, 270), (240, 300), (205, 300), (195, 270)),
        ellipse("saucer", 278, 240, 200, 145, n=24),
        poly("spoon", (405, 68), (422, 72), (400, 140), (385, 200), (380, 235), (395, 250),
             (405, 285), (395, 315), (365, 325), (335, 318), (325, 290), (330, 260), (355, 243),
             (370, 230), (378, 180), (392, 120)),
        ellipse("coffee", 290, 140, 85, 50),
    ],
    "chelsea": [
        ellipse("eye", 172, 118, 32, 25),
        ellipse("eye", 318, 135, 25, 27),
        poly("nose", (240, 228), (290, 222), (298, 235), (282, 255), (262, 262), (248, 245)),
        poly("cat", (30, 40), (120, 10), (330, 10), (390, 60), (390, 200), (340, 260), (260, 290),
             (170, 280), (80, 230), (30, 150)),
    ],
    "rocket": [
        poly("rocket", (313, 140), (322, 127), (332, 140), (340, 180), (338, 300), (335, 400),
             (310, 400), (306, 300), (303, 180)),
        poly("tower", (195, 120), (202, 120), (205, 190), (210, 400), (168, 400), (180, 260),
             (188, 190)),
        poly("tower", (443, 122), (450, 122), (452, 190), (462, 195), (475, 410), (432, 410),
             (442, 200)),
        poly("tower", (0, 0), (85, 0), (88, 420), (0, 420)),
    ],
    "camera": [
        poly("camera", (258, 148), (285, 140), (322, 140), (326, 150), (322, 180), (290, 185),
             (260, 182)),
        poly("head", (155, 95), (180, 70), (225, 65), (262, 85), (268, 140), (255, 185), (230, 195),
             (200, 190), (170, 170), (158, 130)),
        poly("tripod", (275, 205), (300, 205), (310, 320), (405, 500), (390, 505), (300, 420),
             (298, 490), (285, 490), (284, 420), (240, 500), (228, 495), (270, 330)),
        poly("building", (340, 185), (350, 170), (372, 163), (392, 170), (400, 185), (400, 200),
             (340, 200)),
    ],
    "coins": [
        ellipse("coin", 333, 47, 30, 30),
        ellipse("coin", 270, 120, 26, 26),
        ellipse("coin", 208, 193, 24, 24),
        ellipse("coin", 345, 185, 33, 33),
        ellipse("coin", 45, 255, 28, 28),
        ellipse("coin", 172, 258, 27, 27),
    ],
    "motorcycle_left": [
        poly("motorcycle", (95, 200), (150, 150), (330, 170), (470, 160), (520, 100), (580, 120),
             (560, 200), (610, 270), (680, 330), (685, 420), (640, 450), (580, 440), (510, 380),
             (440, 370), (330, 380), (260, 395), (180, 400), (130, 370), (120, 300), (95, 240)),
        ellipse("wheel", 600, 375, 85, 75),
        ellipse("wheel", 195, 320, 75, 80),
        ellipse("headlight", 535, 155, 28, 28),
        poly("engine", (340, 255), (470, 245), (478, 300), (460, 360), (400, 375), (340, 365),
             (332, 300)),
        poly("box", (612, 190), (680, 185), (682, 275), (614, 275)),
        rect("bin", 520, 181, 612, 250),
    ],
    "motorcycle_right": [
        poly("motorcycle", (50, 200), (105, 150), (285, 170), (420, 160), (470, 100), (535, 120),
             (510, 200), (560, 270), (625, 330), (628, 420), (585, 450), (530, 440), (465, 380),
             (395, 370), (290, 380), (220, 395), (140, 400), (85, 370), (78, 300), (50, 240)),
        ellipse("wheel", 548, 375, 80, 75),
        ellipse("wheel", 150, 320, 72, 80),
        ellipse("headlight", 480, 155, 27, 27),
        poly("engine", (295, 255), (425, 245), (433, 300), (415, 360), (355, 375), (295, 365),
             (287, 300)),
        rect("bin", 502, 180, 595, 250),
    ],
    "hubble_deep_field": [
        ellipse("galaxy", 729, 472, 30, 28),
        ellipse("galaxy", 450, 156, 30, 29),
        ellipse("galaxy", 322, 322, 33, 28),
        ellipse("star", 752, 577, 28, 28),
        ellipse("galaxy", 972, 482, 27, 28),
    ],
    "immunohistochemistry": [
        poly("gland", (255, 345), (280, 312), (320, 305), (360, 320), (385, 370), (385, 450),
             (360, 495), (300, 505), (262, 480), (250, 420)),
        poly("gland", (300, 10), (420, 5), (455, 100), (455, 200), (430, 280), (390, 295),
             (345, 270), (300, 200), (275, 120), (270, 50)),
    ],
    "clock": [
        ellipse("clock", 210, 155, 65, 55),
    ],
    "retina": [
        ellipse("optic disc", 215, 640, 95, 100),
    ],
    "page": [
        rect("text", 2, 4, 296, 40),
        rect("text", 2, 45, 383, 138),
        rect("text", 40, 158, 260, 191),
    ],
    "moon": [
        ellipse("crater", 120, 85, 25, 25),
        poly("ridge", (295, 100), (330, 85), (365, 105), (360, 160), (335, 190), (300, 170)),
        poly("crater", (215, 400), (250, 380), (290, 395), (306, 440), (295, 476), (250, 478),
             (215, 450)),
    ],
}


def load_photo(name: str) -> np.ndarray:
    """A scikit-image photo by loader name: ``(H, W, 3)`` RGB or ``(H, W)`` gray uint8."""
    from skimage import data as skdata

    if name.startswith("motorcycle_"):
        left, right, _ = skdata.stereo_motorcycle()
        img = left if name.endswith("left") else right
    else:
        img = getattr(skdata, name)()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img.astype(np.uint8))


def _scale_for(img: np.ndarray) -> float:
    return min(1.0, MAX_SIDE / max(img.shape[:2]))


def build() -> tuple[dict, dict[str, np.ndarray]]:
    """The COCO dictionary and ``{file_name: photo}`` of the sample set (in memory)."""
    labels = sorted({o.label for objs in ANNOTATIONS.values() for o in objs})
    cat_id = {name: k + 1 for k, name in enumerate(labels)}
    images, annotations, photos = [], [], {}
    ann_id = 1
    for image_id, (name, objects) in enumerate(ANNOTATIONS.items(), start=1):
        img = load_photo(name)
        s = _scale_for(img)
        if s < 1.0:
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                             interpolation=cv2.INTER_AREA)
        H, W = img.shape[:2]
        file_name = f"{name}.jpg"
        photos[file_name] = img
        images.append({"id": image_id, "file_name": file_name, "width": W, "height": H,
                       "license": 0, "source": f"skimage.data.{name}"})
        for obj in objects:
            p = np.clip(np.asarray(obj.polygon, np.float64) * s, 0, [W, H])
            x0, y0 = p.min(axis=0)
            x1, y1 = p.max(axis=0)
            area = float(abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) / 2)
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cat_id[obj.label],
                "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                         round(float(y1 - y0), 2)],
                "segmentation": [[round(float(v), 2) for v in p.ravel()]],
                "area": round(area, 2), "iscrowd": 0,
            })
            ann_id += 1
    coco = {
        "info": {"description": "tmatch sample set: scikit-image photos annotated by hand",
                 "version": str(VERSION)},
        "licenses": [{"id": 0, "name": "see scikit-image's data/README.txt"}],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cat_id[n], "name": n, "supercategory": "object"} for n in labels],
    }
    return coco, photos


def write_samples(out_dir: str | os.PathLike) -> Path:
    """Write the sample set as a COCO folder: ``out_dir/images/*.jpg`` and
    ``out_dir/instances.json``. Returns ``out_dir``.

    >>> import tempfile
    >>> d = write_samples(tempfile.mkdtemp())
    >>> sorted(p.name for p in d.iterdir())
    ['images', 'instances.json']
    """
    out = Path(out_dir)
    coco, photos = build()
    (out / "images").mkdir(parents=True, exist_ok=True)
    for file_name, img in photos.items():
        bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:  # pragma: no cover
            raise DataError(f"cannot encode sample photo {file_name}")
        atomic_write(out / "images" / file_name, buf.tobytes(), sync=False)
    atomic_write(out / "instances.json", json.dumps(coco, indent=1))
    return out


def fingerprint() -> str:
    """A short hash of the annotations and settings: edited annotations get a new cache folder."""
    import zlib

    text = repr((VERSION, MAX_SIDE, sorted((k, v) for k, v in ANNOTATIONS.items())))
    return f"{zlib.crc32(text.encode()):08x}"


def sample_dir() -> Path:
    """The sample set's folder, written once into :func:`cache_root` (safe when several
    processes race: each writes a private folder and renames it into place)."""
    root = cache_root()
    final = root / f"samples-v{VERSION}-{fingerprint()}"
    if (final / "instances.json").is_file():
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot write the sample set into {root} ({e}); set TMATCH_CACHE") from None
    with atomic_dir(final, replace=False) as tmp:  # another process may win the race: keep its folder
        write_samples(tmp)
    return final
