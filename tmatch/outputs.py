"""Output paths checked before any work, and the hidden files a killed run leaves behind.

Every verb that writes calls :func:`check_outputs` first with what it will write and what it
reads, so that a path that cannot be written fails at once, as one line, before minutes of
matching or training: an existing folder where a file is expected, a file where a folder is
expected (or as a parent), a folder that is not writable, an image suffix no encoder knows, an
output that is one of the inputs. A missing parent folder is fine (it is created on writing).

Outputs appear at their final name only when complete (:mod:`tmatch.files`): a killed process
leaves at most a hidden ``.NAME.PID.*tmp*`` beside it, which :func:`remove_stale` deletes once
that process is gone.

>>> check_outputs({"--out": Output("pairs.png", "image")})
>>> check_outputs({"--out": Output("pairs.xyz", "image")})
Traceback (most recent call last):
    ...
tmatch.errors.InputError: --out pairs.xyz: unknown image suffix '.xyz' (use .png, .jpg, .bmp, .tif or .webp)
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tmatch.errors import InputError

#: image suffixes an overlay, sheet or panel may be written as.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: what each kind of output is, for messages.
KINDS = ("file", "image", "json", "folder", "results")


@dataclass(frozen=True)
class Output:
    """One path a verb will write.

    Attributes:
        path: as the user gave it (``None``: not written, skipped).
        kind: ``"file"`` (any file), ``"image"`` (suffix in :data:`IMAGE_SUFFIXES`), ``"json"``
            (a file; ``.json``/``.jsonl`` or no suffix), ``"folder"`` (created or reused) or
            ``"results"`` (a file that is read back to resume: a regular file, never a device
            or a pipe). A symbolic link is written through to its target; a device or a named
            pipe (``/dev/stdout``) is written to in place (:mod:`tmatch.files`).
    """

    path: str | os.PathLike | None
    kind: str = "file"


def check_number(value: float | None, name: str, lo: float = -math.inf, hi: float = math.inf,
                 *, open_lo: bool = False) -> float | None:
    """``value`` as a float when it is finite and within ``[lo, hi]`` (``(lo, hi]`` with
    ``open_lo``); ``None`` stays ``None``.

    >>> check_number(0.5, "--tolerance", lo=0)
    0.5
    >>> check_number(float("nan"), "--tolerance", lo=0)
    Traceback (most recent call last):
        ...
    tmatch.errors.InputError: --tolerance must be a finite number >= 0, got nan
    """
    if value is None:
        return None
    v = float(value)
    ok = math.isfinite(v) and (lo < v if open_lo else lo <= v) and v <= hi
    if not ok:
        low = f"> {lo:g}" if open_lo else f">= {lo:g}"
        if math.isinf(lo) and math.isinf(hi):
            bounds = ""
        elif math.isinf(hi):
            bounds = " " + low
        elif math.isinf(lo):
            bounds = f" <= {hi:g}"
        else:
            bounds = f" in ({lo:g}, {hi:g}]" if open_lo else f" in [{lo:g}, {hi:g}]"
        raise InputError(f"{name} must be a finite number{bounds}, got {value!r}")
    return v


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (``samefile`` when both exist, else the
    resolved paths)."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return a.resolve() == b.resolve()


def _first_existing(p: Path) -> Path:
    parent = p.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _image_suffix_ok(p: Path) -> bool:
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    import cv2

    have = getattr(cv2, "haveImageWriter", None)
    return True if have is None else bool(have(f"x{p.suffix.lower()}"))


def check_output(path: str | os.PathLike, name: str, kind: str = "file") -> Path:
    """Refuse an output ``path`` of ``kind`` (see :class:`Output`) that cannot be written.

    Raises:
        InputError: one line naming the option at fault and what would work.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    from tmatch.files import is_special, write_target

    if str(path).strip() == "":
        raise InputError(f"{name} is empty; give a path")
    p = Path(path)
    real = write_target(p)
    if is_special(real):
        if kind in ("folder", "results"):
            what = "a folder" if kind == "folder" else "a regular file (it is read back to resume)"
            raise InputError(f"{name} {p} is a device or a pipe; give {what}")
        if not os.access(real, os.W_OK):
            raise InputError(f"{name} {p} cannot be written: no permission")
        return p
    if kind == "folder":
        if p.exists() and not p.is_dir():
            raise InputError(f"{name} {p} is a file; give a folder (a new name, or an existing folder)")
    else:
        if p.is_dir():
            suffix = p.suffix or {"image": ".png", "json": ".json"}.get(kind, "")
            raise InputError(f"{name} {p} is a folder; give a file name, like {p / ('out' + suffix)}")
        if kind == "image" and not _image_suffix_ok(p):
            shown = p.suffix or "(none)"
            raise InputError(f"{name} {p}: unknown image suffix {shown!r} "
                             "(use .png, .jpg, .bmp, .tif or .webp)" if p.suffix else
                             f"{name} {p} has no image suffix (use .png, .jpg, .bmp, .tif or .webp)")
    parent = _first_existing(real.parent if kind != "folder" or not real.exists() else real)
    if not parent.is_dir():
        raise InputError(f"{name} {p} cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{name} {p} cannot be written: folder {parent} is not writable")
    return p


def check_outputs(outputs: Mapping[str, Output],
                  inputs: Mapping[str, str | os.PathLike | None] | None = None) -> None:
    """Check every output before any work: each one on its own (:func:`check_output`), none is
    an input, a folder holding an input, or another output, and no image or folder is written
    inside a folder that is read (it would overwrite the images there, or be read next time).

    Args:
        outputs: ``{option name: Output(path, kind)}``; ``None`` paths are skipped.
        inputs: ``{option name: path}`` of the files and folders read.

    Raises:
        InputError: one line naming the option at fault.
    """
    given = {k: o for k, o in outputs.items() if o.path is not None}
    read = {k: Path(v) for k, v in (inputs or {}).items() if v is not None}
    seen: dict[str, Path] = {}
    for name, o in given.items():
        p = Path(o.path)
        for other, q in read.items():
            if same_path(p, q):
                raise InputError(f"{name} {p} is the input {other}: writing it would destroy it; "
                                 "choose another output name")
            if o.kind == "folder" and q.exists() and _inside(q, p):
                raise InputError(f"{name} {p} holds the input {other}: its files would be overwritten; "
                                 "choose a folder outside the inputs")
            if q.is_dir() and _inside(p, q) and (o.kind in ("image", "folder") or _is_image_file(p)):
                raise InputError(f"{name} {p} is inside the input folder {other} ({q}): it would overwrite "
                                 "or add to the images read there; choose a path outside it")
        for other, q in seen.items():
            if same_path(p, q):
                raise InputError(f"{name} and {other} are the same path {p}")
        check_output(p, name, o.kind)
        seen[name] = p


def _inside(p: Path, folder: Path) -> bool:
    """Whether ``p`` is ``folder`` or lies under it (links resolved)."""
    a, b = Path(os.path.realpath(p)), Path(os.path.realpath(folder))
    return a == b or b in a.parents


def _is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and p.exists()


_STALE_REST = re.compile(r"^(?P<pid>\d+)\.(?:[^.]*\.)?(?:tmp|old)(?:\.[^.]*)?$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` may still run (its staging files are then kept)."""
    if pid == os.getpid() or os.name != "posix":
        return True  # no safe probe without POSIX signals: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale(path: str | os.PathLike) -> list[Path]:
    """Delete the hidden staging files and folders of ``path`` (``.NAME.PID....tmp``,
    ``.NAME.PID.old``) left by processes that no longer run; returns what was removed."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    removed = []
    head = f".{path.name}."
    for p in parent.iterdir():
        m = _STALE_REST.match(p.name[len(head):]) if p.name.startswith(head) else None
        if m is None or process_alive(int(m.group("pid"))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(p)
    return removed
