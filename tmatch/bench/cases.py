"""Benchmark cases and their records: the data spec, case keys, the run's spec, and the typed
records (:class:`CaseRecord`, :class:`MethodInfo`, :class:`BenchResult`).

>>> keys = case_keys(n_source=3, protocols=["seed", "warp"], limit=2)
>>> [k.case for k in keys]
['seed-000000', 'warp-000000', 'seed-000001', 'warp-000001']
>>> [k.case for k in case_keys(3, ["seed"], shard=(1, 2))]
['seed-000001']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from tmatch import rle
from tmatch.errors import DataError, InputError, TmatchError
from tmatch.match import Match

SPEC_VERSION = 1
#: the protocols of ``tmatch.data`` (compose with ``+``, e.g. ``homography+photometric``).
PROTOCOLS = ("seed", "homography", "photometric", "warp", "negatives", "rotate", "zoom-out",
             "zoom-in", "perspective", "screen")
#: spec fields that define which cases a run holds; a resumed run must agree on all of them.
CASE_FIELDS = ("data", "n_source", "protocols", "limit", "seed", "shard")


# --------------------------------------------------------------------------- typed records
@dataclass(frozen=True)
class DataSpec:
    """Which pair source a run reads: a folder (COCO or photos), a COCO file + image folder,
    or, with everything ``None``, the embedded sample set."""

    path: str | None = None
    annotations: str | None = None
    images: str | None = None

    @classmethod
    def from_options(cls, path: str | os.PathLike | None = None,
                     annotations: str | os.PathLike | None = None,
                     images: str | os.PathLike | None = None) -> DataSpec:
        """Check the paths exist and store them absolute (a run can be resumed from anywhere)."""
        if path is not None and (annotations is not None or images is not None):
            raise InputError("give either a data folder or --coco/--images, not both")
        if images is not None and annotations is None:
            raise InputError("--images DIR goes with --coco ANNOTATIONS")
        from tmatch.data.sources import is_named

        if is_named(path):  # a built-in source ("screens"), kept by name
            return cls(str(path))
        for p, what in ((path, "data folder"), (annotations, "annotation file"), (images, "image folder")):
            if p is not None and not Path(p).exists():
                raise DataError(f"{what} not found: {p}")
        return cls(*(None if p is None else str(Path(p).resolve()) for p in (path, annotations, images)))

    def describe(self) -> str:
        if self.annotations:
            return f"COCO {self.annotations}" + (f" (images {self.images})" if self.images else "")
        return self.path or "embedded sample set"

    def open(self) -> Any:
        """The pair source, via ``tmatch.data.open_source``."""
        from tmatch.data import open_source

        if self.annotations:
            return open_source(annotations=self.annotations, images=self.images)
        return open_source(path=self.path)


@dataclass(frozen=True)
class CaseKey:
    """One case: a protocol applied to one item of the source."""

    index: int
    protocol: str

    @property
    def case(self) -> str:
        return f"{self.protocol}-{self.index:06d}"

    @classmethod
    def parse(cls, case: str) -> CaseKey:
        """Inverse of :attr:`case`: ``"warp-000012"`` → ``CaseKey(12, "warp")``."""
        protocol, _, num = str(case).rpartition("-")
        if not protocol or not num.isdigit():
            raise InputError(f"not a case id (PROTOCOL-INDEX, e.g. warp-000012): {case!r}")
        return cls(int(num), protocol)


@dataclass
class CaseRecord:
    """What one method did on one case. ``mask`` (COCO RLE) and ``polygon`` are stored in the
    JSON lines but left out of the tables (:data:`TABLE_EXCLUDE`).

    ``iou`` compares the predicted and true ``(H, W)`` masks at the image's native size; on a
    negative case (template absent) both are empty when the method is right, giving 1.0.
    ``correct`` is ``iou > 0.5`` when the template is present and ``not found`` when absent;
    never on a case where the matcher raised (``error``, recorded as not found, ``ms`` NaN).
    ``ms`` is the matcher's own time; ``rss_mb`` the process RSS after the case,
    ``peak_rss_mb`` the process peak so far, ``gpu_mb`` the peak GPU memory of the batch.
    """

    case: str
    index: int
    protocol: str
    method: str
    image_name: str
    image_id: str
    ann_id: int | None
    label: str
    box_x: float | None
    box_y: float | None
    box_w: float | None
    box_h: float | None
    image_h: int
    image_w: int
    present: bool
    found: bool
    score: float
    iou: float
    correct: bool
    ms: float
    rss_mb: float
    peak_rss_mb: float
    gpu_mb: float | None
    device: str
    threads: int
    batch: int
    pred_x: int | None = None
    pred_y: int | None = None
    pred_w: int | None = None
    pred_h: int | None = None
    error: str = ""
    mask: dict[str, Any] = field(default_factory=dict, repr=False)
    polygon: list[list[float]] | None = field(default=None, repr=False)

    def to_row(self) -> dict[str, Any]:
        """The JSON line stored for this record (mask included)."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CaseRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def to_match(self) -> Match:
        """The stored prediction as a :class:`~tmatch.match.Match` (mask decoded from RLE)."""
        mask = rle.decode(self.mask) if self.mask else np.zeros((self.image_h, self.image_w), bool)
        box = None if self.pred_x is None else (self.pred_x, self.pred_y, self.pred_w, self.pred_h)
        poly = None if self.polygon is None else np.asarray(self.polygon, float)
        return Match(found=self.found, score=self.score, polygon=poly, box=box, mask=mask,  # type: ignore[arg-type]
                     ms=self.ms, method=self.method)


TABLE_EXCLUDE = ("mask", "polygon")
TABLE_COLUMNS = [f.name for f in fields(CaseRecord) if f.name not in TABLE_EXCLUDE]


@dataclass(frozen=True)
class MethodInfo:
    """How a method was run: the report states these for every method (fair timing)."""

    name: str
    device: str
    threads: int
    batch: int
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchResult:
    """What :func:`run_bench` did: the run folder, its cases and what was (re)computed."""

    run: Path
    n_cases: int
    methods: list[MethodInfo]
    computed: int
    skipped: int
    seconds: float


# ------------------------------------------------------------------------------ the case list
def case_keys(n_source: int, protocols: Sequence[str], limit: int | None = None,
              shard: tuple[int, int] = (0, 1)) -> list[CaseKey]:
    """Cases of a run in order: index-major (all protocols of item 0, then item 1...), the first
    ``limit`` items, and of those the items ``i`` with ``i % N == shard_index``."""
    n = n_source if limit is None else min(n_source, int(limit))
    k, total = shard
    return [CaseKey(i, p) for i in range(k, n, total) for p in protocols]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` (0-based ``i < N``) → ``(i, N)``; ``None`` → ``(0, 1)``.

    >>> parse_shard("2/8")
    (2, 8)
    """
    if text is None or str(text).strip() == "":
        return (0, 1)
    head, sep, tail = str(text).partition("/")
    try:
        if not sep:
            raise ValueError
        i, n = int(head), int(tail)
    except ValueError:
        raise InputError(f"--shard must be I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


def check_protocols(protocols: Sequence[str]) -> list[str]:
    """Normalised protocol names (``tmatch.data`` names, composable with ``+``); unknown ones
    raise :class:`InputError` listing the valid ones."""
    from tmatch.data.protocols import resolve

    out = []
    for p in protocols:
        if not str(p).strip():
            continue
        try:
            out.append(resolve(str(p))[0])
        except TmatchError as e:
            raise InputError(str(e)) from None
    if not out:
        raise InputError("no protocol given; choose from: " + ", ".join(PROTOCOLS))
    return list(dict.fromkeys(out))


def check_methods(methods: Sequence[str]) -> list[str]:
    """Normalised method names; unknown or unavailable ones raise :class:`TmatchError`."""
    from tmatch.registry import matcher_class

    out = [str(m).strip().lower() for m in methods if str(m).strip()]
    if not out:
        raise InputError("no method given (e.g. --methods sift,ncc)")
    for m in out:
        matcher_class(m)
    return list(dict.fromkeys(out))


def make_spec(data: DataSpec, n_source: int, protocols: Sequence[str], methods: Sequence[str],
              limit: int | None, seed: int, shard: tuple[int, int]) -> dict[str, Any]:
    """The JSON spec of a run (what ``spec.json`` holds)."""
    return {
        "version": SPEC_VERSION,
        "data": asdict(data),
        "n_source": int(n_source),
        "protocols": list(protocols),
        "limit": None if limit is None else int(limit),
        "seed": int(seed),
        "shard": [int(shard[0]), int(shard[1])],
        "methods": list(methods),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def spec_cases(spec: dict[str, Any]) -> list[CaseKey]:
    """The cases a stored spec describes."""
    shard = spec.get("shard") or [0, 1]
    return case_keys(int(spec["n_source"]), spec["protocols"], spec.get("limit"),
                     (int(shard[0]), int(shard[1])))

