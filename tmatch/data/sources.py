"""``open_source``: one entry point that picks the right pair source for a path."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from tmatch.data.coco import CocoSource
from tmatch.data.cutouts import CutoutSource
from tmatch.data.folder import FolderSource
from tmatch.data.pairs import PairSource
from tmatch.errors import DataError

KINDS = ("auto", "coco", "folder", "cutouts", "samples", "screens")
#: names that open a built-in source instead of a path (when no such file or folder exists).
NAMED = ("screens",)


def is_named(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` names a built-in source (``"screens"``) rather than a file or folder."""
    return path is not None and str(path) in NAMED and not Path(path).exists()


def find_annotations(path: Path) -> Path | None:
    """The COCO instances file of a folder (``instances.json``, ``annotations.json``, a single
    ``*.json``, or one in ``annotations/``), or of a file path; ``None`` when there is none."""
    if path.is_file():
        return path if path.suffix.lower() == ".json" else None
    if not path.is_dir():
        return None
    for name in ("instances.json", "annotations.json"):
        if (path / name).is_file():
            return path / name
    for folder in (path, path / "annotations"):
        if not folder.is_dir():
            continue
        found = sorted(folder.glob("*.json"))
        inst = [p for p in found if p.name.startswith("instances")]
        cands = inst or found
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            raise DataError(f"several annotation files in {folder} ({', '.join(p.name for p in cands)}); "
                            "pick one with annotations=")
    return None


def _build(cls, what: str, *args, **kwargs) -> PairSource:
    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as e:
        params = [p for p in inspect.signature(cls).parameters][len(args):]
        raise DataError(f"bad option for a {what} source ({e}); accepted: {', '.join(params)}") from None
    return cls(*args, **kwargs)


def open_source(path: str | os.PathLike | None = None, *, annotations: str | os.PathLike | None = None,
                images: str | os.PathLike | None = None, kind: str = "auto", max_side: int = 640,
                min_query_hw: int = 32, target: str = "box", **options) -> PairSource:
    """Open a pair source.

    Args:
        path: ``None`` for the embedded sample set; a COCO folder (with ``instances.json`` or
            ``annotations/*.json``) or instances file; a plain folder of photos; with
            ``kind="cutouts"`` a folder of RGBA PNGs; ``"screens"`` (or a folder written by
            :func:`tmatch.data.screens.write_screens`) for web pages rendered at several display
            scales (:class:`~tmatch.data.screens.ScreenSource`).
        annotations: a COCO instances file (or a folder holding one); ``path`` is then the image
            folder (the original's ``TRAIN_DIR`` / ``TRAIN_ANNOTATION_DIR``).
        images: the image folder of a COCO file; for cut-outs, the background photos.
        kind: ``"auto"``, ``"coco"``, ``"folder"``, ``"cutouts"``, ``"samples"`` or
            ``"screens"``.
        max_side: search images larger than this are downscaled (boxes and masks too).
        min_query_hw: smallest template side.
        target: COCO target: ``"box"`` or ``"mask"`` (instance segmentation).
        **options: passed to the source class (``pairs_per_image``, ``seed``, ``backgrounds``,
            ``pages``...).

    Returns:
        A :class:`~tmatch.data.pairs.PairSource`.

    >>> src = open_source(None)
    >>> src.name, len(src) > 30
    ('samples', True)
    """
    if kind not in KINDS:
        raise DataError(f"unknown source kind {kind!r}; choose one of: {', '.join(KINDS)}")
    common = {"max_side": max_side, "min_query_hw": min_query_hw}
    if kind == "screens" or (kind == "auto" and is_named(path)) or (
            path is not None and (Path(path) / "screens.json").is_file()):
        from tmatch.data.screens import ScreenSource

        root = None if path is None or is_named(path) else path
        return _build(ScreenSource, "screens", root, min_query_hw=min_query_hw, **options)
    if kind == "cutouts":
        if path is None:
            raise DataError("a cut-out source needs a folder of RGBA PNGs")
        backgrounds = options.pop("backgrounds", None) or images
        return _build(CutoutSource, "cutouts", path, backgrounds, **common, **options)
    if kind == "samples" or (path is None and annotations is None):
        from tmatch.data.samples import sample_dir

        d = sample_dir()
        return _build(CocoSource, "samples", d / "instances.json", d / "images", target=target,
                      name="samples", **common, **options)
    if annotations is not None:
        ann = find_annotations(Path(annotations))
        if ann is None:
            raise DataError(f"no COCO annotation file at {annotations}")
        img_dir = images if images is not None else path
        return _build(CocoSource, "coco", ann, img_dir, target=target, **common, **options)
    p = Path(path)
    if not p.exists():
        raise DataError(f"dataset path not found: {p}")
    if kind == "folder":
        return _build(FolderSource, "folder", p, **common, **options)
    ann = find_annotations(p)
    if ann is not None:
        return _build(CocoSource, "coco", ann, images, target=target, **common, **options)
    if kind == "coco":
        raise DataError(f"no COCO annotation file (instances.json, annotations/*.json) in {p}")
    if p.is_file():
        raise DataError(f"{p} is neither a COCO .json file nor a folder of photos")
    return _build(FolderSource, "folder", p, **common, **options)
