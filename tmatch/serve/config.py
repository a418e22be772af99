"""The service's settings, fixed when the app is built (one frozen dataclass, no globals)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tmatch.errors import InputError
from tmatch.registry import DEFAULT_MATCHER


def default_workers() -> int:
    """Matching workers by default: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServeConfig:
    """What ``tmatch serve`` runs with.

    Attributes:
        method: matcher used when a request names none (loaded in every worker at start-up).
        workers: matching threads; each loads its own matchers (the model once per worker).
        threads: compute threads each worker's matcher uses (OpenCV, ONNX Runtime).
        queue: requests that may wait for a worker; beyond ``workers + queue`` in flight the
            server answers 503 with ``Retry-After`` instead of queueing.
        max_bytes: largest accepted upload, per file.
        max_pixels: largest accepted image (width × height), checked from the file's header
            before decoding, which also stops decompression bombs.
        templates: registered templates kept (least recently used dropped first).
        token: when set, ``/v1/*`` and ``/metrics`` need ``Authorization: Bearer <token>``.
        warmup: load ``method`` in every worker before accepting requests.
        head_timeout: seconds for a request's head to arrive whole (else 408, connection closed).
        body_timeout: seconds a request body may pause (else 408, connection closed).
        max_connections: open connections served at once; a request beyond them gets 503.
        weights: ``{method: weights file}`` for matchers a request may name (``--weights-for``);
            requests cannot choose weights files themselves.

    >>> ServeConfig(method="sift", workers=1).queue
    32
    """

    method: str = DEFAULT_MATCHER
    workers: int = 2
    threads: int = 1
    queue: int = 32
    max_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    templates: int = 64
    token: str | None = None
    warmup: bool = True
    head_timeout: float = 10.0
    body_timeout: float = 15.0
    max_connections: int = 256
    weights: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("workers", "threads", "max_bytes", "max_pixels", "templates", "max_connections"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("head_timeout", "body_timeout"):
            if not float(getattr(self, name)) > 0:
                raise InputError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if int(self.queue) < 0:
            raise InputError(f"queue must be >= 0, got {self.queue}")
        if self.token is not None and not str(self.token).strip():
            raise InputError("token must not be empty")

    @property
    def max_body(self) -> int:
        """Largest request body: two files at ``max_bytes`` plus room for the form fields."""
        return 2 * int(self.max_bytes) + 1_000_000
