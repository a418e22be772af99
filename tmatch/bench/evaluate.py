"""Evaluating cases in one process: the loaded matchers, C-level reseeding, memory and GPU
peaks, and one :class:`~tmatch.bench.cases.CaseRecord` per case and method."""

from __future__ import annotations

import ctypes
import resource
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tmatch import geometry, rle
from tmatch.errors import TmatchError
from tmatch.match import Match

if TYPE_CHECKING:  # pragma: no cover
    from tmatch.matchers.base import Matcher

from tmatch.bench.cases import CaseKey, CaseRecord, DataSpec, MethodInfo


def process_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def process_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def on_gpu(matcher: Matcher) -> bool:
    return matcher.device.startswith("cuda")


class EvalContext:
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
            batch = self.batch if on_gpu(m) else 1
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
        rss_mb=round(process_rss_mb(), 2), peak_rss_mb=round(process_peak_rss_mb(), 2),
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
    libc = load_libc()
    if libc is not None:
        libc.srand(ctypes.c_uint(k))


_LIBC: list[Any] = []


def load_libc() -> Any:
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(None))
        except OSError:  # pragma: no cover - platforms without a global C namespace
            _LIBC.append(None)
    return _LIBC[0]


def _gpu_peak_start(matcher: Matcher) -> bool:
    """Reset CUDA's peak-memory counter before a matcher that declares a CUDA device runs;
    ``False`` when there is nothing to measure (CPU matcher, or no CUDA here)."""
    if not on_gpu(matcher):
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


def evaluate_unit(ctx: EvalContext, work: Sequence[tuple[CaseKey, Sequence[str]]]) -> list[CaseRecord]:
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


