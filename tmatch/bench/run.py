"""Compute benchmark records: every method on every case of a pair source, stored as it goes.

A *case* is one pair ``make_pair(source, index, protocol, seed)``, named
``f"{protocol}-{index:06d}"``. For each case and method the harness records IoU against the
ground-truth mask at the image's native resolution, found, score, time, memory and the case's
metadata (:class:`CaseRecord`), and keeps the predicted mask as COCO RLE. Records are appended to
``RUN/records/<method>.jsonl`` as soon as they exist (see :mod:`tmatch.bench.store`), so an
interrupted run resumes where it stopped. Pictures and tables come from
:mod:`tmatch.bench.report`, drawn from the stored records only.

>>> keys = case_keys(n_source=3, protocols=["seed", "warp"], limit=2)
>>> [k.case for k in keys]
['seed-000000', 'warp-000000', 'seed-000001', 'warp-000001']
>>> [k.case for k in case_keys(3, ["seed"], shard=(1, 2))]
['seed-000001']
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from tmatch import geometry, rle
from tmatch.bench.store import RunStore
from tmatch.errors import DataError, InputError, TmatchError
from tmatch.match import Match
from tmatch.registry import accepted_options
from tmatch.threads import limit_threads

if TYPE_CHECKING:  # pragma: no cover
    from tmatch.matchers.base import Matcher

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
                     images: str | os.PathLike | None = None) -> "DataSpec":
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
    def parse(cls, case: str) -> "CaseKey":
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
    def from_row(cls, row: dict[str, Any]) -> "CaseRecord":
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


# ----------------------------------------------------------------------- running one process
def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _on_gpu(matcher: Matcher) -> bool:
    return matcher.device.startswith("cuda")


class _Context:
    """What one process needs to evaluate cases: the source and the loaded matchers."""

    def __init__(self, spec: dict[str, Any], options: dict[str, dict[str, Any]], batch: int,
                 threads: int | None, source: Any = None):
        from tmatch.registry import load_matcher

        self.spec = spec
        self.seed = int(spec["seed"])
        self.source = DataSpec(**spec["data"]).open() if source is None else source
        self.matchers = {m: load_matcher(m, **options.get(m, {})) for m in options}
        self.batch = int(batch)
        self.threads = threads
        self._infos: dict[str, MethodInfo] = {}

    def info(self, method: str) -> MethodInfo:
        """Device, threads and batch size of a method (read once, while the run's threads are set)."""
        if method not in self._infos:
            m = self.matchers[method]
            batch = self.batch if _on_gpu(m) else 1
            threads = self.threads if self.threads is not None else m.threads_in_use()
            self._infos[method] = MethodInfo(method, m.device, int(threads), int(batch),
                                             _jsonable(m.options()))
        return self._infos[method]

    def pair(self, key: CaseKey) -> Any:
        from tmatch.data import make_pair

        return make_pair(self.source, key.index, protocol=key.protocol, seed=self.seed)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(d, default=str))


def _record(key: CaseKey, method: str, info: MethodInfo, pair: Any, m: Match | None,
            error: str = "", gpu_mb: float | None = None) -> CaseRecord:
    """A :class:`CaseRecord` from a pair and a match (``m=None``: the matcher raised ``error``)."""
    H, W = pair.image.shape[:2]
    truth = np.asarray(pair.mask, bool)
    if m is not None and m.mask.shape != truth.shape:
        error = f"mask shape {m.mask.shape} != image shape {truth.shape}"
        m = None
    if m is None:
        m = Match.absent((H, W), method=method)
        m.ms = float("nan")
    iou = geometry.iou(m.mask, truth)
    present = bool(pair.present)
    meta = pair.meta
    box = getattr(meta, "box", None)
    bx = [None] * 4 if box is None else [float(v) for v in box]
    pb = [None] * 4 if (not m.found or m.box is None) else [int(v) for v in m.box]
    ann = getattr(meta, "ann_id", None)
    return CaseRecord(
        case=key.case, index=key.index, protocol=key.protocol, method=method,
        image_name=str(getattr(meta, "image_name", "") or ""),
        image_id=str(getattr(meta, "image_id", "") or ""),
        ann_id=None if ann is None else int(ann), label=str(getattr(meta, "label", "") or ""),
        box_x=bx[0], box_y=bx[1], box_w=bx[2], box_h=bx[3], image_h=int(H), image_w=int(W),
        present=present, found=bool(m.found), score=float(m.score), iou=float(iou),
        correct=not error and (bool(iou > 0.5) if present else not m.found), ms=float(m.ms),
        rss_mb=round(_rss_mb(), 2), peak_rss_mb=round(_peak_rss_mb(), 2),
        gpu_mb=None if gpu_mb is None else round(gpu_mb, 2),
        device=info.device, threads=info.threads, batch=info.batch,
        pred_x=pb[0], pred_y=pb[1], pred_w=pb[2], pred_h=pb[3], error=error,
        mask=rle.encode(m.mask),
        polygon=None if (not m.found or m.polygon is None) else np.asarray(m.polygon, float).round(3).tolist(),
    )


def reseed(seed: int, case: str) -> None:
    """Reset the C-level random generators before a case, so that its result does not depend on
    what ran before it in this process (resuming, shards and workers then agree).

    OpenCV's FLANN kd-trees (the SIFT matcher) draw from libc's ``rand()``; other OpenCV code
    from ``cv::theRNG()``. Neither is reachable from numpy's generators.
    """
    import zlib

    import cv2

    k = zlib.crc32(f"{seed}|{case}".encode()) & 0x7FFFFFFF
    cv2.setRNGSeed(k)
    libc = _libc()
    if libc is not None:
        libc.srand(ctypes.c_uint(k))


_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(None))
        except OSError:  # pragma: no cover - platforms without a global C namespace
            _LIBC.append(None)
    return _LIBC[0]


def _gpu_peak_start(matcher: Matcher) -> bool:
    """Reset CUDA's peak-memory counter before a matcher that declares a CUDA device runs;
    ``False`` when there is nothing to measure (CPU matcher, or no CUDA here)."""
    if not _on_gpu(matcher):
        return False
    import torch

    if not torch.cuda.is_available():
        return False
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return True


def _gpu_peak_mb() -> float:
    import torch

    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def evaluate_unit(ctx: _Context, work: Sequence[tuple[CaseKey, Sequence[str]]]) -> list[CaseRecord]:
    """Evaluate ``work`` — cases with the methods still to run on each — in this process.

    Each pair is generated once. A method with batch size 1 runs ``match`` per case (template
    work counted in every case, as in the original study); a batched (GPU) method runs
    ``match_many`` over the cases that share a template, in chunks of its batch size. The C-level
    random generators are reset before each case (:func:`reseed`), so a case's result does not
    depend on what this process ran before (resumed, sharded and pooled runs agree). A
    :class:`TmatchError` from a matcher is recorded as that case's ``error``; anything else
    propagates (the run stops and can be resumed).
    """
    pairs = {key: ctx.pair(key) for key, _ in work}
    out: list[CaseRecord] = []
    methods = list(dict.fromkeys(m for _, ms in work for m in ms))
    for method in methods:
        matcher, info = ctx.matchers[method], ctx.info(method)
        keys = [k for k, ms in work if method in ms]
        if info.batch <= 1:
            for key in keys:
                pair = pairs[key]
                reseed(ctx.seed, key.case)
                try:
                    m, err = matcher.match(pair.template, pair.image), ""
                except TmatchError as e:
                    m, err = None, _first_line(e)
                out.append(_record(key, method, info, pair, m, err))
            continue
        for group in _template_groups([(k, pairs[k]) for k in keys], info.batch):
            tracked = _gpu_peak_start(matcher)
            reseed(ctx.seed, group[0][0].case)
            try:
                found = matcher.match_many(group[0][1].template, [p.image for _, p in group])
                err = ""
            except TmatchError as e:
                found, err = [None] * len(group), _first_line(e)
            gpu = _gpu_peak_mb() if tracked else None
            out.extend(_record(k, method, info, p, m, err, gpu)
                       for (k, p), m in zip(group, found, strict=True))
    return out


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _template_groups(items: list[tuple[CaseKey, Any]], batch: int) -> list[list[tuple[CaseKey, Any]]]:
    """Consecutive chunks (at most ``batch`` long) of cases whose templates are identical."""
    groups: list[list[tuple[CaseKey, Any]]] = []
    for k, p in items:
        g = groups[-1] if groups else None
        if (g is not None and len(g) < batch and g[0][1].template.shape == p.template.shape
                and np.array_equal(g[0][1].template, p.template)):
            g.append((k, p))
        else:
            groups.append([(k, p)])
    return groups


# Worker processes (spawned): one context each, built by the initializer.
_WORKER: dict[str, Any] = {}


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when ``parent`` does, however it ends (SIGKILL too):
    Linux's parent-death signal, and an exit at once if ``parent`` is already gone. Ctrl-C is
    left to the parent, which stops its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = _libc()
    if sys.platform.startswith("linux") and libc is not None:
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` in the main thread, so that
    ``finally`` clauses run (workers stopped, files closed) instead of the process vanishing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the workers now (not after their current unit)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _worker_init(spec: dict[str, Any], options: dict[str, dict[str, Any]],
                 registry: dict[str, str], threads: int | None, parent: int) -> None:
    die_with_parent(parent)
    from tmatch import registry as reg

    for name, target in registry.items():
        reg.MATCHERS.setdefault(name, target)
    _WORKER["ctx"] = _Context(spec, options, batch=1, threads=threads)
    if threads is not None:
        _WORKER["threads"] = limit_threads(threads)
        _WORKER["threads"].__enter__()  # this process only lives for the run


def _worker_run(work: list[tuple[CaseKey, list[str]]]) -> list[dict[str, Any]]:
    return [r.to_row() for r in evaluate_unit(_WORKER["ctx"], work)]


# ------------------------------------------------------------------------------- the run
def run_bench(out: str | os.PathLike, methods: Sequence[str], protocols: Sequence[str] = ("seed",),
              data: DataSpec | None = None, limit: int | None = None, seed: int = 0,
              shard: tuple[int, int] = (0, 1), workers: int = 1, threads: int | None = None,
              batch: int = 16, device: str | None = None, options: dict[str, Any] | None = None,
              method_options: dict[str, dict[str, Any]] | None = None, progress: bool = False,
              ) -> BenchResult:
    """Run ``methods`` on every case of ``data`` under ``protocols``, storing into ``out``.

    Resumes: cases already stored for a method are not recomputed; a run folder holding a
    different run (other data, protocols, seed, limit or shard) is refused. New methods may be
    added to an existing run.

    Args:
        out: run folder (created).
        methods: matcher names (``tmatch.list_matchers()``).
        protocols: pair protocols (:data:`PROTOCOLS`).
        data: the pair source; ``None`` is the embedded sample set.
        limit: use only the first ``limit`` items of the source.
        seed: the pairs' seed (pairs are deterministic in seed, protocol and index).
        shard: ``(i, N)``: only items whose index is ``i`` modulo ``N``.
        workers: >1 runs CPU matchers in a process pool of that size (GPU ones stay here).
        threads: OpenCV/torch thread count during the run (default: 1 per worker when
            ``workers > 1``, else unchanged); restored afterwards.
        batch: batch size of matchers running on a GPU (``match_many``); CPU matchers use 1.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` for matchers that take a device (the neural
            ones). Default: ``"cpu"`` when ``threads`` is given — every method timed on the CPU
            with the same thread count — else the matchers' own default.
        options: matcher options (e.g. ``{"weights": path}``), given to each matcher that
            accepts them; ``threads`` and ``batch_size`` are added from the arguments above.
        method_options: options for one method each, ``{method: {option: value}}`` (e.g. its
            own ``weights``), over ``options``.
        progress: show a progress bar with ETA on stderr.

    Returns:
        a :class:`BenchResult`.
    """
    t_start = time.perf_counter()
    methods = check_methods(methods)
    protocols = check_protocols(protocols)
    shard = parse_shard(f"{shard[0]}/{shard[1]}")
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    if batch < 1:
        raise InputError(f"--batch must be >= 1, got {batch}")
    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise InputError(f"--device must be auto, cpu or cuda, got {device!r}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    data = data or DataSpec()
    source = data.open()
    n_source = len(source)
    if n_source == 0:
        raise DataError(f"the data source has no items: {data.describe()}")
    store = RunStore(out)
    spec = make_spec(data, n_source, protocols, methods, limit, seed, shard)
    if store.exists():
        old = store.read_spec()
        diff = [k for k in CASE_FIELDS if _norm(old.get(k)) != _norm(spec[k])]
        if diff:
            raise TmatchError(f"{store.root} holds a different run ({', '.join(diff)} differ); "
                              "choose another --out")
        spec["methods"] = list(dict.fromkeys([*old.get("methods", []), *methods]))
        spec["created"] = old.get("created", spec["created"])
    common = dict(options or {})
    if device is not None or threads is not None:
        common.setdefault("device", device or "cpu")
    if workers > 1 and threads is None:
        threads = 1
    if threads is not None:
        common.setdefault("threads", threads)  # runtimes with their own pools (ONNX Runtime)
    common.setdefault("batch_size", batch)
    opts = {m: accepted_options(m, common) for m in methods}
    for m, extra in (method_options or {}).items():
        if m not in opts:
            raise InputError(f"options given for {m!r}, which is not among the methods ({', '.join(methods)})")
        opts[m].update(extra)
    keys = spec_cases(spec)
    ctx = _Context(spec, opts, batch, threads, source=source)  # loads the matchers (and torch)
    with store, limit_threads(threads):
        store.write_spec(spec)
        infos = {m: ctx.info(m) for m in methods}
        done = {m: store.done_cases(m) for m in methods}
        pending = [(k, [m for m in methods if k.case not in done[m]]) for k in keys]
        pending = [(k, ms) for k, ms in pending if ms]
        n_todo = sum(len(ms) for _, ms in pending)
        skipped = len(keys) * len(methods) - n_todo
        pooled = [m for m in methods if workers > 1 and not _on_gpu(ctx.matchers[m])]
        local = [m for m in methods if m not in pooled]
        bar = _progress(n_todo, progress, f"bench {','.join(methods)}")
        try:
            units = _units(pending)
            if pooled:
                _run_pool(store, spec, units, pooled, opts, threads, workers, bar)
            for unit in units:
                work = [(k, [m for m in ms if m in local]) for k, ms in unit]
                work = [(k, ms) for k, ms in work if ms]
                if work:
                    _write(store, evaluate_unit(ctx, work), bar)
        finally:
            bar.close()
        _write_methods(store, infos)
    result = BenchResult(store.root, len(keys), list(infos.values()), n_todo, skipped,
                         time.perf_counter() - t_start)
    return result


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _units(pending: list[tuple[CaseKey, list[str]]]) -> list[list[tuple[CaseKey, list[str]]]]:
    """Group consecutive cases of the same source item (their pairs may share a template)."""
    units: list[list[tuple[CaseKey, list[str]]]] = []
    for k, ms in pending:
        if units and units[-1][0][0].index == k.index:
            units[-1].append((k, ms))
        else:
            units.append([(k, ms)])
    return units


def _write(store: RunStore, records: Iterable[CaseRecord | dict[str, Any]], bar: Any) -> None:
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        row = r.to_row() if isinstance(r, CaseRecord) else r
        by_method.setdefault(row["method"], []).append(row)
    for method, rows in by_method.items():
        bar.update(store.append(method, rows))


def _run_pool(store: RunStore, spec: dict[str, Any], units: list[list[tuple[CaseKey, list[str]]]],
              methods: list[str], opts: dict[str, dict[str, Any]], threads: int | None,
              workers: int, bar: Any) -> None:
    """Evaluate ``methods`` on ``units`` in a spawned process pool, appending as results come."""
    import multiprocessing

    from tmatch.registry import MATCHERS

    registry = {m: MATCHERS[m] for m in methods}
    todo = [[(k, [m for m in ms if m in methods]) for k, ms in u] for u in units]
    todo = [w for w in ([(k, ms) for k, ms in w if ms] for w in todo) if w]
    ctx = multiprocessing.get_context("spawn")
    with terminate_on_sigterm(), ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init,
            initargs=(spec, {m: opts[m] for m in methods}, registry, threads, os.getpid())) as ex:
        it = iter(todo)
        running: set[Future] = set()
        try:
            while True:
                while len(running) < 3 * workers:
                    w = next(it, None)
                    if w is None:
                        break
                    running.add(ex.submit(_worker_run, w))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    _write(store, f.result(), bar)
        except BaseException:
            _stop_workers(ex)
            raise


def _write_methods(store: RunStore, infos: dict[str, MethodInfo]) -> None:
    from tmatch.bench.store import read_json, write_json

    path = store.root / "methods.json"
    old = read_json(path) if path.exists() else {}
    old.update({m: asdict(i) for m, i in infos.items()})
    write_json(path, old)


def _progress(total: int, show: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="case", dynamic_ncols=True, file=sys.stderr,
                smoothing=0.05, disable=not show or total == 0)
