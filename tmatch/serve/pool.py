"""A bounded pool of matching workers: each loads its matchers once, the queue is bounded.

Matching is CPU-bound and runs in OpenCV and ONNX Runtime, which release the GIL, so the
workers are threads. Every worker keeps its own matcher instances (the model is loaded once
per worker, never shared between threads), and its own prepared copy of each registered
template (a matcher's prepared template may cache encodings while it matches). At most
``workers + queue`` jobs are admitted; one more is refused at once with
:class:`~tmatch.serve.errors.ApiError` 503 and a ``Retry-After`` estimate, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from tmatch.errors import CheckpointError, InputError, TmatchError
from tmatch.registry import load_matcher, matcher_class
from tmatch.serve.errors import ApiError, bad_option, busy

T = TypeVar("T")
log = logging.getLogger("tmatch.serve")


@dataclass
class Worker:
    """One worker thread's own state: its index and its matchers, most recently used last.

    A new matcher matches a toy pair once under ``first_use`` (a lock all workers share)
    before it serves: what it sets up on first use (an inference session, an exported graph
    written to the cache) is then never done by two threads at once.
    """

    index: int
    threads: int
    first_use: threading.Lock = field(default_factory=threading.Lock)
    max_matchers: int = 4
    weights: dict[str, str] = field(default_factory=dict)
    matchers: OrderedDict = field(default_factory=OrderedDict)

    def matcher(self, method: str, options: dict[str, Any], key: tuple) -> Any:
        """The worker's matcher for ``method`` with ``options``, built on first use."""
        k = (method, key)
        if k in self.matchers:
            self.matchers.move_to_end(k)
            return self.matchers[k]
        opts = dict(options)
        if _accepts_threads(method):
            opts["threads"] = self.threads
        if method in self.weights:
            opts["weights"] = self.weights[method]
        try:
            m = load_matcher(method, **opts)
        except InputError as e:
            raise bad_option(f"bad option for {method!r}: {e}") from None
        except CheckpointError as e:
            if "no trained weights" not in str(e):
                raise ApiError(422, "unavailable_method",
                               f"matcher {method!r} is not available on this server: its weights "
                               f"cannot be loaded") from None
            log.warning("cannot load %s: %s", method, e)
            raise ApiError(422, "unavailable_method",
                           f"matcher {method!r} has no trained weights on this server; its operator can "
                           f"start it with `tmatch serve --weights-for {method}=PATH` (a checkpoint from "
                           f"`tmatch train`)") from None
        except TmatchError as e:
            if "bad option" in str(e):
                raise bad_option(str(e)) from None
            log.warning("cannot load %s: %s", method, e)
            reason = re.sub(r"\s*\([^()]*/[^()]*\)", "", str(e).splitlines()[0])  # no server paths
            raise ApiError(422, "unavailable_method",
                           f"matcher {method!r} is not available on this server: {reason}") from None
        with self.first_use:  # shared by the workers: a first use may export a graph
            try:
                m.match(*_warm_pair())
            except TmatchError as e:  # a refusal of the toy pair is no reason not to serve
                log.warning("first match with %s: %s", method, e)
        self.matchers[k] = m
        while len(self.matchers) > self.max_matchers:
            self.matchers.popitem(last=False)
        return m


def _warm_pair() -> tuple[np.ndarray, np.ndarray]:
    """A small template and image (blurred noise) for a matcher's first use."""
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (192, 192, 3), dtype=np.uint8),
                             (5, 5), 0)
    return np.ascontiguousarray(image[60:124, 50:130]), image


def _accepts_threads(method: str) -> bool:
    return "threads" in matcher_class(method).option_table()


class WorkerPool:
    """``workers`` threads behind a queue of at most ``queue`` waiting jobs.

    Args:
        workers: matching threads.
        queue: jobs that may wait; more in flight than ``workers + queue`` get a 503.
        threads: compute threads per matcher (passed as ``threads=`` where accepted).
        weights: ``{method: weights file}`` the operator chose (``tmatch serve --weights-for``).
    """

    def __init__(self, workers: int, queue: int, threads: int = 1, weights: dict[str, str] | None = None):
        self.workers, self.capacity, self.threads = int(workers), int(workers) + int(queue), int(threads)
        self.weights = dict(weights or {})
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._job_s = 0.2  # moving average of a job's time, for Retry-After
        self._local = threading.local()
        self._first_use = threading.Lock()
        self._count = 0
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tmatch-worker",
                                            initializer=self._init_worker)

    # -------------------------------------------------------------------- state
    def _init_worker(self) -> None:
        with self._lock:
            index = self._count
            self._count += 1
        self._local.worker = Worker(index, self.threads, self._first_use, weights=self.weights)

    @property
    def queued(self) -> int:
        """Jobs admitted and waiting for a worker."""
        with self._lock:
            return self._admitted - self._running

    @property
    def running(self) -> int:
        """Jobs being worked on now."""
        with self._lock:
            return self._running

    # ---------------------------------------------------------------------- run
    def admit(self) -> None:
        """Reserve a place, or raise the 503 :class:`ApiError` when none is left."""
        with self._lock:
            if self._admitted >= self.capacity:
                waiting = self._admitted - self._running + 1
                retry = max(1, math.ceil(self._job_s * waiting / self.workers))
                raise busy(retry)
            self._admitted += 1

    def release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def _call(self, fn: Callable[[Worker], T]) -> T:
        with self._lock:
            self._running += 1
        t0 = time.perf_counter()
        try:
            return fn(self._local.worker)
        finally:
            dt = time.perf_counter() - t0
            with self._lock:
                self._running -= 1
                self._admitted -= 1
                self._job_s = 0.9 * self._job_s + 0.1 * dt

    def submit(self, fn: Callable[[Worker], T]) -> Future:
        """Queue ``fn(worker)``; raises the 503 :class:`ApiError` at once when the queue is full."""
        self.admit()
        try:
            return self._executor.submit(self._call, fn)
        except BaseException:
            self.release()
            raise

    async def run(self, fn: Callable[[Worker], T]) -> T:
        """Run ``fn(worker)`` on a worker thread and wait for it; 503 when the queue is full."""
        return await asyncio.wrap_future(self.submit(fn))

    def warm_up(self, method: str) -> None:
        """Load ``method`` in every worker (each matches a toy pair once, one worker at a
        time, so that whatever a matcher sets up on first use is ready before the first
        request). Blocks until every worker is done."""
        barrier = threading.Barrier(self.workers)

        def load(worker: Worker) -> None:
            try:
                worker.matcher(method, {}, ())
            finally:
                barrier.wait(timeout=600)

        futures = [self.submit(load) for _ in range(self.workers)]
        for f in futures:
            f.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
