"""``tmatch serve``: the HTTP API and the web page, the model loaded once per worker."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from tmatch.cli._options import WeightsFor, weights_for


def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.", min=0, max=65535)] = 8000,
    method: Annotated[str, typer.Option(
        "--method", "-m", help="Matcher name (see `tmatch methods`); default hybrid, as for "
                               "`tmatch match` and the Python API (`-m neural` is about 3x faster "
                               "for live camera frames).")] = "hybrid",
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", help="Matching workers, each with its own copy of the model "
                                "(default: one per core, at most 4).", min=1)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="TMATCH_TOKEN",
        help="Require 'Authorization: Bearer TOKEN' on /v1/* and /metrics (or set TMATCH_TOKEN).")] = None,
    queue: Annotated[int, typer.Option(
        "--queue", help="Requests that may wait for a worker; more get 503 with Retry-After.", min=0)] = 32,
    threads: Annotated[int, typer.Option(
        "--threads", help="Compute threads per worker.", min=1)] = 1,
    max_mb: Annotated[float, typer.Option(
        "--max-mb", help="Largest upload per file, in MB.", min=0.001)] = 20.0,
    max_mp: Annotated[float, typer.Option(
        "--max-mp", help="Largest image, in megapixels (checked before decoding).", min=0.001)] = 40.0,
    templates: Annotated[int, typer.Option(
        "--templates", help="Registered templates kept (least recently used dropped).", min=1)] = 64,
    head_timeout: Annotated[float, typer.Option(
        "--head-timeout", help="Seconds for a request's head to arrive whole (else 408).", min=0.001)] = 10.0,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", help="Seconds a request body may pause (else 408).", min=0.001)] = 15.0,
    max_connections: Annotated[int, typer.Option(
        "--max-connections", help="Connections served at once; a request beyond them gets 503.",
        min=1)] = 256,
    weights_for_: WeightsFor = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the matcher over HTTP, with a web page at / (upload or live camera).

    Examples:

      tmatch serve                         # then open http://127.0.0.1:8000/

      tmatch serve --method sift --workers 2 --port 8080

      TMATCH_TOKEN=secret tmatch serve --host 0.0.0.0

      tmatch serve --weights-for dual-unet=runs/dual/best.safetensors   # requests may name dual-unet
    """
    import uvicorn

    from tmatch.errors import TmatchError
    from tmatch.registry import load_matcher, matcher_class
    from tmatch.serve import ServeConfig, create_app, default_workers
    from tmatch.serve.server import uvicorn_config

    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level.lower() not in levels:
        raise TmatchError(f"--log-level must be one of {', '.join(levels)}, got {log_level!r}")
    log_level = log_level.lower()
    matcher_class(method)  # unknown names: one line, exit 2
    weights = {m: o["weights"] for m, o in weights_for(weights_for_).items()}
    from tmatch.errors import CheckpointError

    try:  # missing weights too, and weights of the wrong matcher, before the server starts
        load_matcher(method, **({"weights": weights[method]} if method in weights else {}))
    except CheckpointError as e:
        if "no trained weights" not in str(e):
            raise
        raise TmatchError(f"no trained weights are installed for {method!r}; give them with "
                          f"--weights-for {method}=PATH (a checkpoint from `tmatch train`)") from None
    for m, path in weights.items():
        if m != method:
            load_matcher(m, weights=path)
    config = ServeConfig(method=method, workers=workers or default_workers(), threads=threads,
                         queue=queue, max_bytes=int(max_mb * 1e6), max_pixels=int(max_mp * 1e6),
                         templates=templates, token=token, head_timeout=head_timeout,
                         body_timeout=body_timeout, max_connections=max_connections, weights=weights)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise TmatchError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                          f"choose another --port") from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    typer.echo(f"tmatch serve: {method}, {config.workers} worker(s); open http://{shown}:{port}/ "
               f"(API docs at /docs)")
    uvicorn.Server(uvicorn_config(create_app(config), config, host, port, log_level)).run()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
