"""Prometheus metrics of one app (its own registry: nothing global, several apps may coexist)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Requests, latency, errors and queue depth, rendered as Prometheus text."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queued: Callable[[], int], running: Callable[[], int],
                 templates: Callable[[], int]):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tmatch_requests", "HTTP requests answered.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("tmatch_request_duration_seconds", "Time to answer a request.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("tmatch_errors", "Requests answered with an error, by error code.",
                              ["code"], registry=r)
        self.match_latency = Histogram("tmatch_match_duration_seconds",
                                       "Time a worker spent matching (decode excluded).",
                                       ["method"], buckets=LATENCY_BUCKETS, registry=r)
        Gauge("tmatch_queue_depth", "Jobs admitted and waiting for a worker.",
              registry=r).set_function(queued)
        Gauge("tmatch_workers_busy", "Workers matching now.", registry=r).set_function(running)
        Gauge("tmatch_templates", "Registered templates held.", registry=r).set_function(templates)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: counts every answered HTTP request and times it, by route template
    (``/v1/templates/{template_id}/match``, not each id)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(msg: dict) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            self.metrics.observe(path, scope.get("method", ""), status, time.perf_counter() - t0)
