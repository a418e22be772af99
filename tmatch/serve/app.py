"""The HTTP service: ``create_app(config)`` builds a FastAPI app with its own worker pool,
template store and metrics (nothing global; several apps may live in one process).

Endpoints (see ``/docs`` for the schema):

* ``POST /v1/match`` — multipart ``template`` + ``image`` (+ ``method``, ``options``) → the
  :class:`~tmatch.match.Match` as JSON, or with ``?overlay=png`` the overlay picture.
* ``POST /v1/templates`` → ``{"id", ...}``; ``POST /v1/templates/{id}/match`` with an ``image``;
  ``DELETE /v1/templates/{id}``.
* ``GET /v1/methods``, ``GET /v1/samples``, ``GET /healthz``, ``GET /metrics``; the page at ``/``.

Errors are JSON ``{"status", "error", "detail"}``: 400 unreadable upload, 401 missing token,
404 unknown template, 413 too large, 422 unknown method or bad option, 503 queue full (with
``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, Security, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from tmatch import __version__
from tmatch.errors import InputError
from tmatch.io import check_pair
from tmatch.match import Match
from tmatch.region import parse_region
from tmatch.serve import images
from tmatch.serve.auth import TokenGate
from tmatch.serve.config import ServeConfig
from tmatch.serve.errors import ApiError, too_large
from tmatch.serve.limits import BodyLimit
from tmatch.serve.metrics import Metrics, RequestMetrics
from tmatch.serve.options import check_method, describe, freeze, parse_options
from tmatch.serve.pool import Worker, WorkerPool
from tmatch.serve.samples import Samples
from tmatch.serve.templates import TemplateEntry, TemplateStore
from tmatch.threads import limit_threads

log = logging.getLogger("tmatch.serve")

STATIC = resources.files("tmatch.serve") / "static"

_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          413: "too_large", 422: "invalid_request", 503: "busy"}


# Request fields shared by the routes (module level, so that the schema can resolve them).
Overlay = Annotated[Literal["png"] | None, Query(
    description="`png`: answer with the image and the match drawn over it instead of JSON.")]
WithMask = Annotated[bool, Query(description="Include the mask (COCO RLE) in the JSON.")]
MethodField = Annotated[str | None, Form(
    description="Matcher name (see `/v1/methods`); the server's default when left out.")]
OptionsField = Annotated[str | None, Form(
    description='Matcher options as a JSON object, e.g. `{"ratio": 0.8}` (see `/v1/methods`).')]
RegionField = Annotated[str | None, Form(
    description="Search only this part of the image: `x,y,w,h` in image pixels (clipped to the "
                "image); the answer stays in the whole image's pixels.")]


def _region(text: str | None) -> tuple[int, int, int, int] | None:
    """The ``region`` form field parsed (a 422 when malformed), ``None`` when not given."""
    if text is None or not text.strip():
        return None
    try:
        return parse_region(text)
    except InputError as e:
        raise ApiError(422, "invalid_request", str(e)) from None


@dataclass
class Outcome:
    """What a worker hands back: the match, its JSON-ready dict (RLE encoded in the worker, not
    on the event loop), and the overlay PNG when one was asked for."""

    match: Match
    body: dict[str, Any] | None
    overlay: bytes | None
    queue_ms: float
    work_ms: float


def _locate(matcher: Any, prepared: Any, template: np.ndarray, image: np.ndarray, method: str,
            region: tuple[int, int, int, int] | None = None) -> Match:
    """``matcher.match_prepared``; a template larger than the image is 'not found', other
    inputs the matcher refuses or fails on (a region outside the image) are a 422."""
    try:
        return matcher.match_prepared(prepared, template, image, region=region)
    except InputError as e:
        (th, tw), (ih, iw) = template.shape[:2], image.shape[:2]
        if th > ih or tw > iw:
            return Match.absent((ih, iw), method=method, reason=str(e))
        raise ApiError(422, "unmatchable", str(e)) from None
    except Exception as e:  # noqa: BLE001 — a matcher failing on a degenerate input is not a 500
        raise _failed(method, "image", template, image, e) from None


def _prepare(matcher: Any, template: np.ndarray, method: str) -> Any:
    """``matcher.prepare`` after the library's own minimum template size is checked (a template
    one pixel high can crash a native feature detector inside ``prepare``, before the matcher's
    own checks run)."""
    try:
        check_pair(template, template)  # against itself: only the minimum size applies
        return matcher.prepare(template)
    except InputError as e:
        raise ApiError(422, "unmatchable", f"template: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise _failed(method, "template", template, None, e) from None


def _failed(method: str, stage: str, template: np.ndarray, image: np.ndarray | None,
            e: Exception) -> ApiError:
    sizes = f"template {template.shape[1]}x{template.shape[0]}"
    if image is not None:
        sizes += f", image {image.shape[1]}x{image.shape[0]}"
    log.warning("%s failed on %s (%s)", method, sizes, e, exc_info=e)
    first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return ApiError(422, "unmatchable", f"{method} cannot match this {stage} ({sizes}): {first[:200]}")


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The service for ``config`` (defaults: :class:`ServeConfig`).

    >>> from fastapi.testclient import TestClient
    >>> with TestClient(create_app(ServeConfig(method="sift", workers=1))) as client:
    ...     client.get("/healthz").json()["status"]
    'ok'
    """
    cfg = config or ServeConfig()
    default_method = check_method(cfg.method)
    pool = WorkerPool(cfg.workers, cfg.queue, cfg.threads, weights=cfg.weights)
    store = TemplateStore(cfg.templates)
    samples = Samples()
    metrics = Metrics(queued=lambda: pool.queued, running=lambda: pool.running,
                      templates=lambda: len(store))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        with limit_threads(cfg.threads):
            if cfg.warmup:
                await asyncio.to_thread(pool.warm_up, default_method)
            # again, now that loading the matchers may have imported torch: its threads too
            with limit_threads(cfg.threads):
                log.info("tmatch serve: %s ready in %d worker(s)", default_method, cfg.workers)
                try:
                    yield
                finally:
                    pool.close()

    # FastAPIOffline: FastAPI with /docs served from the package's own copy of Swagger UI (no CDN)
    app = FastAPIOffline(
        title="tmatch",
        version=__version__,
        summary="Find a template in an image: polygon, box, homography, mask and score.",
        description="Upload a template and an image to `/v1/match`, or register the template once "
                    "with `/v1/templates` and match many images against it. The web page is at `/`.",
        lifespan=lifespan,
        redoc_url=None,
        static_url="/docs-files",
    )
    app.state.config, app.state.pool, app.state.store, app.state.metrics = cfg, pool, store, metrics
    bearer = [Security(HTTPBearer(auto_error=False, description="Needed when the server runs with --token."))]

    # ------------------------------------------------------------------ errors
    def error_response(status: int, code: str, detail: str, headers: dict | None = None) -> JSONResponse:
        metrics.errors.labels(code).inc()
        return JSONResponse({"status": status, "error": code, "detail": detail}, status_code=status,
                            headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
            parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        log.exception("internal error on %s", request.url.path)
        return error_response(500, "internal", f"internal error ({type(exc).__name__}); see the server log")

    # ---------------------------------------------------------------- helpers
    async def read_upload(upload: UploadFile, what: str) -> bytes:
        if upload.size is not None and upload.size > cfg.max_bytes:  # still on disk: never read
            raise too_large(f"{what} is larger than {cfg.max_bytes / 1e6:.1f} MB")
        data = await upload.read(cfg.max_bytes + 1)
        images.check_bytes(data, what, cfg.max_bytes)
        images.header_size(data, what, cfg.max_pixels)  # 400/413 before any queueing
        return data

    def decode(data: bytes, what: str) -> np.ndarray:
        return images.decode(data, what, cfg.max_bytes, cfg.max_pixels)

    def answer(out: Outcome) -> Response:
        timing = {"Server-Timing": f"queue;dur={out.queue_ms:.1f}, match;dur={out.work_ms:.1f}"}
        if out.overlay is not None:
            timing.update({"X-Match-Found": str(out.match.found).lower(),
                           "X-Match-Score": f"{out.match.score:.6f}"})
            return Response(out.overlay, media_type="image/png", headers=timing)
        return JSONResponse(out.body, headers=timing)

    def finish(match: Match, image: np.ndarray, method: str, overlay: bool, mask: bool,
               t_queued: float, t_start: float) -> Outcome:
        from tmatch import viz

        match.method = match.method or method
        metrics.match_latency.labels(method).observe(match.ms / 1000.0)
        png = images.encode_png(viz.overlay(image, match, label=method)) if overlay else None
        body = None if overlay else match.to_dict(mask=mask)
        return Outcome(match, body, png, (t_start - t_queued) * 1000.0,
                       (time.perf_counter() - t_start) * 1000.0)

    # ----------------------------------------------------------------- routes
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness and the pool's state."""
        return {"status": "ok", "version": __version__, "method": default_method,
                "workers": cfg.workers, "capacity": pool.capacity, "queued": pool.queued,
                "running": pool.running, "templates": len(store), "auth": cfg.token is not None}

    @app.get("/metrics", tags=["service"], dependencies=bearer, response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text: requests, latency histograms, errors by code, queue depth."""
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/methods", tags=["match"], dependencies=bearer)
    async def methods() -> dict[str, Any]:
        """The matchers, their descriptions and the options a request may set."""
        return {"default": default_method,
                "methods": [{"name": m.name, "description": m.description, "options": m.options}
                            for m in describe()]}

    @app.post("/v1/match", tags=["match"], dependencies=bearer,
              responses={200: {"content": {"image/png": {}}}})
    async def match(
        template: Annotated[UploadFile, File(description="The template picture.")],
        image: Annotated[UploadFile, File(description="The picture to search.")],
        method: MethodField = None,
        options: OptionsField = None,
        region: RegionField = None,
        overlay: Overlay = None,
        mask: WithMask = True,
    ) -> Response:
        """Find `template` in `image`: the match as JSON (found, score, polygon, box,
        homography, mask as COCO RLE, ms), or the overlay picture with `?overlay=png`."""
        name = check_method(method or default_method)
        opts = parse_options(name, options)
        area = _region(region)
        key = freeze(opts)
        tpl_bytes = await read_upload(template, "template")
        img_bytes = await read_upload(image, "image")
        t_queued = time.perf_counter()

        def job(worker: Worker) -> Outcome:
            t_start = time.perf_counter()
            tpl, img = decode(tpl_bytes, "template"), decode(img_bytes, "image")
            matcher = worker.matcher(name, opts, key)
            t0 = time.perf_counter()
            m = _locate(matcher, _prepare(matcher, tpl, name), tpl, img, name, area)
            m.ms = (time.perf_counter() - t0) * 1000.0
            return finish(m, img, name, overlay is not None, mask, t_queued, t_start)

        return answer(await pool.run(job))

    @app.post("/v1/templates", tags=["templates"], dependencies=bearer, status_code=201)
    async def add_template(
        template: Annotated[UploadFile, File(description="The template picture.")],
        method: MethodField = None,
        options: OptionsField = None,
    ) -> dict[str, Any]:
        """Register a template: it is decoded and prepared once (per worker) and kept, least
        recently used first out, for `POST /v1/templates/{id}/match`."""
        name = check_method(method or default_method)
        opts = parse_options(name, options)
        key = freeze(opts)
        data = await read_upload(template, "template")

        def job(worker: Worker) -> dict[str, Any]:
            tpl = decode(data, "template")
            matcher = worker.matcher(name, opts, key)
            prepared = _prepare(matcher, tpl, name)
            entry = store.add(name, opts, key, tpl)
            entry.prepared[worker.index] = prepared
            return entry.info()

        return await pool.run(job)

    @app.post("/v1/templates/{template_id}/match", tags=["templates"], dependencies=bearer,
              responses={200: {"content": {"image/png": {}}}})
    async def match_template(
        template_id: str,
        image: Annotated[UploadFile, File(description="The picture to search.")],
        region: RegionField = None,
        overlay: Overlay = None,
        mask: WithMask = True,
    ) -> Response:
        """Find a registered template in `image` (JSON, or the overlay with `?overlay=png`)."""
        entry: TemplateEntry = store.get(template_id)
        area = _region(region)
        img_bytes = await read_upload(image, "image")
        t_queued = time.perf_counter()

        def job(worker: Worker) -> Outcome:
            t_start = time.perf_counter()
            img = decode(img_bytes, "image")
            matcher = worker.matcher(entry.method, entry.options, entry.key)
            t0 = time.perf_counter()
            prepared = entry.prepared.get(worker.index)
            if prepared is None:
                prepared = entry.prepared[worker.index] = _prepare(matcher, entry.image, entry.method)
            m = _locate(matcher, prepared, entry.image, img, entry.method, area)
            m.ms = (time.perf_counter() - t0) * 1000.0
            return finish(m, img, entry.method, overlay is not None, mask, t_queued, t_start)

        return answer(await pool.run(job))

    @app.delete("/v1/templates/{template_id}", tags=["templates"], dependencies=bearer, status_code=204)
    async def delete_template(template_id: str) -> Response:
        """Forget a registered template (404 when it is not held)."""
        if not store.delete(template_id):
            store.get(template_id)  # raises the 404
        return Response(status_code=204)

    @app.get("/v1/samples", tags=["samples"], dependencies=bearer)
    async def sample_list() -> dict[str, Any]:
        """Sample pairs (a template and a photo) from the embedded sample photos."""
        return {"samples": samples.listing()}

    @app.get("/v1/samples/{pair_id}/template.png", tags=["samples"], dependencies=bearer,
             response_class=Response)
    async def sample_template(pair_id: str) -> Response:
        return Response(await asyncio.to_thread(samples.template_png, pair_id), media_type="image/png")

    @app.get("/v1/samples/{pair_id}/image.jpg", tags=["samples"], dependencies=bearer,
             response_class=Response)
    async def sample_image(pair_id: str) -> Response:
        return Response(await asyncio.to_thread(samples.image_bytes, pair_id), media_type="image/jpeg")

    # Outermost first: metrics see every answer, the token is checked before a body is read,
    # then the body's size.
    app.add_middleware(BodyLimit, max_body=cfg.max_body,
                       on_reject=lambda: metrics.errors.labels("too_large").inc())
    app.add_middleware(TokenGate, token=cfg.token,
                       on_reject=lambda: metrics.errors.labels("unauthorized").inc())
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
