"""Expanding what a user names — files, folders, globs — into sorted lists of image paths.

>>> natural_key("shot10.png") > natural_key("shot9.png")
True
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from tmatch.errors import InputError

#: suffixes taken from folders and globs (a file named explicitly is taken whatever its suffix).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm",
                  ".ppm", ".pnm", ".exr", ".hdr", ".pic", ".sr", ".ras")
_GLOB_CHARS = set("*?[")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(name)))


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith(".")


def expand(specs: Iterable[str | os.PathLike], what: str = "images") -> list[Path]:
    """Every image named by ``specs``: a file as it is, a folder's images (not recursive), a
    glob's matching images (``**`` recurses); sorted naturally within each spec, duplicates
    dropped, the order of the specs kept.

    Raises:
        InputError: a spec that is neither a file, a folder nor a glob, or nothing found at all.
    """
    out: list[Path] = []
    for spec in specs:
        text = str(spec)
        p = Path(text).expanduser()
        if p.is_file():
            found = [p]
        elif p.is_dir():
            found = sorted((q for q in p.iterdir() if _is_image(q)), key=lambda q: natural_key(q.name))
            if not found:
                raise InputError(f"{what}: folder {text} holds no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
        elif _GLOB_CHARS & set(text):
            found = sorted((Path(q) for q in glob.glob(os.path.expanduser(text), recursive=True)
                            if _is_image(Path(q))), key=lambda q: natural_key(str(q)))
            if not found:
                raise InputError(f"{what}: no images match {text}")
        else:
            raise InputError(f"{what}: {text} not found (not a file, a folder or a glob)")
        out.extend(found)
    if not out:
        raise InputError(f"no {what} given")
    return list(dict.fromkeys(out))


def shard(items: Sequence, k: int, n: int) -> list:
    """The items of shard ``k`` of ``n``: every ``n``-th from ``k`` (a Slurm array task's share).

    >>> shard(list("abcdefg"), 1, 3)
    ['b', 'e']
    """
    return list(items[k::n])
