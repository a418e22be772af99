"""Compute benchmark records: every method on every case of a pair source, stored as it goes.

A *case* is one pair ``make_pair(source, index, protocol, seed)``, named
``f"{protocol}-{index:06d}"``. For each case and method the harness records IoU against the
ground-truth mask at the image's native resolution, found, score, time, memory and the case's
metadata (:class:`CaseRecord`), and keeps the predicted mask as COCO RLE. Records are appended to
``RUN/records/<method>.jsonl`` as soon as they exist (see :mod:`tmatch.bench.store`), so an
interrupted run resumes where it stopped. Pictures and tables come from
:mod:`tmatch.bench.report`, drawn from the stored records only.

The cases and records are in :mod:`tmatch.bench.cases`, evaluating them in one process in
:mod:`tmatch.bench.evaluate`, the worker processes in :mod:`tmatch.bench.workers`; this module
runs them (resuming, the worker pool, writing records as they come) and re-exports their public
names.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

from tmatch.bench.cases import (
    CASE_FIELDS,
    PROTOCOLS,
    SPEC_VERSION,
    TABLE_COLUMNS,
    TABLE_EXCLUDE,
    BenchResult,
    CaseKey,
    CaseRecord,
    DataSpec,
    MethodInfo,
    case_keys,
    check_methods,
    check_protocols,
    make_spec,
    parse_shard,
    spec_cases,
)
from tmatch.bench.evaluate import EvalContext, evaluate_unit, on_gpu, reseed
from tmatch.bench.store import RunStore
from tmatch.bench.workers import (
    die_with_parent,
    stop_workers,
    terminate_on_sigterm,
    worker_init,
    worker_run,
)
from tmatch.errors import DataError, InputError, TmatchError
from tmatch.registry import accepted_options
from tmatch.threads import limit_threads

__all__ = [
    "CASE_FIELDS",
    "PROTOCOLS",
    "SPEC_VERSION",
    "TABLE_COLUMNS",
    "TABLE_EXCLUDE",
    "BenchResult",
    "CaseKey",
    "CaseRecord",
    "DataSpec",
    "MethodInfo",
    "case_keys",
    "check_methods",
    "check_protocols",
    "die_with_parent",
    "evaluate_unit",
    "make_spec",
    "parse_shard",
    "reseed",
    "run_bench",
    "spec_cases",
    "terminate_on_sigterm",
]


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
    ctx = EvalContext(spec, opts, batch, threads, source=source)  # loads the matchers (and torch)
    with store, limit_threads(threads):
        store.write_spec(spec)
        infos = {m: ctx.info(m) for m in methods}
        done = {m: store.done_cases(m) for m in methods}
        pending = [(k, [m for m in methods if k.case not in done[m]]) for k in keys]
        pending = [(k, ms) for k, ms in pending if ms]
        n_todo = sum(len(ms) for _, ms in pending)
        skipped = len(keys) * len(methods) - n_todo
        pooled = [m for m in methods if workers > 1 and not on_gpu(ctx.matchers[m])]
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
            workers, mp_context=ctx, initializer=worker_init,
            initargs=(spec, {m: opts[m] for m in methods}, registry, threads, os.getpid())) as ex:
        it = iter(todo)
        running: set[Future] = set()
        try:
            while True:
                while len(running) < 3 * workers:
                    w = next(it, None)
                    if w is None:
                        break
                    running.add(ex.submit(worker_run, w))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    _write(store, f.result(), bar)
        except BaseException:
            stop_workers(ex)
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
