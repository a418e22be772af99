"""Worker processes of a benchmark run: each ends with its parent, builds one evaluation
context in its initializer, and is stopped at once when the run is interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tmatch.bench.cases import CaseKey
from tmatch.bench.evaluate import EvalContext, evaluate_unit, load_libc
from tmatch.threads import limit_threads

# Worker processes (spawned): one context each, built by the initializer.
_WORKER: dict[str, Any] = {}


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when ``parent`` does, however it ends (SIGKILL too):
    Linux's parent-death signal, and an exit at once if ``parent`` is already gone. Ctrl-C is
    left to the parent, which stops its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = load_libc()
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


def stop_workers(ex: ProcessPoolExecutor) -> None:
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


def worker_init(spec: dict[str, Any], options: dict[str, dict[str, Any]],
                 registry: dict[str, str], threads: int | None, parent: int) -> None:
    die_with_parent(parent)
    from tmatch import registry as reg

    for name, target in registry.items():
        reg.MATCHERS.setdefault(name, target)
    _WORKER["ctx"] = EvalContext(spec, options, batch=1, threads=threads)
    if threads is not None:
        _WORKER["threads"] = limit_threads(threads)
        _WORKER["threads"].__enter__()  # this process only lives for the run


def worker_run(work: list[tuple[CaseKey, list[str]]]) -> list[dict[str, Any]]:
    return [r.to_row() for r in evaluate_unit(_WORKER["ctx"], work)]

