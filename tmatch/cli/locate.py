"""``tmatch locate TEMPLATE``: find a UI element on the live screen (:mod:`tmatch.screen`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def locate_cmd(
    template: Annotated[Path, typer.Argument(help="The element's picture (PNG, JPEG...).")],
    region: Annotated[Optional[str], typer.Option(
        "--region", help="Search only x,y,w,h of the screen.")] = None,
    wait: Annotated[Optional[float], typer.Option(
        "--wait", help="Poll up to SECONDS until it shows.", min=0.0)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every instance, best first.")] = False,
    confidence: Annotated[Optional[float], typer.Option(
        "--confidence", help="Least calibrated confidence an answer needs (0-1).", min=0.0, max=1.0)] = None,
    scales: Annotated[str, typer.Option(
        "--scales", help="'auto' (display factors 0.5-2) or comma-separated numbers.")] = "auto",
    method: Annotated[str, typer.Option("--method", "-m", help="ncc (default for screens) or any matcher.")] = "ncc",
    json_out: Annotated[Optional[str], typer.Option("--json", help="Write the result(s) as JSON here ('-': stdout).")] = None,
) -> None:
    """Find TEMPLATE on the screen now (or within --wait seconds); exit 1 when it is not there.

    Examples:

      tmatch locate button.png

      tmatch locate dialog.png --wait 10 --json -

      tmatch locate icon.png --all --region 0,0,1920,60
    """
    from tmatch import io, screen
    from tmatch.files import atomic_write
    from tmatch.region import parse_region

    tpl = io.read_image(template, "template")
    area = None if region is None else parse_region(region, "--region")
    from tmatch.errors import InputError

    try:
        scale_arg = "auto" if scales.strip().lower() == "auto" else \
            tuple(float(v) for v in scales.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--scales must be 'auto' or comma-separated numbers, got {scales!r}") from None
    opts = {"region": area, "confidence": confidence, "scales": scale_arg, "method": method}
    if all_:
        found = screen.locate_all(tpl, **opts)
        if not found and wait:
            try:
                screen.wait(tpl, timeout=wait, **opts)
                found = screen.locate_all(tpl, **opts)
            except screen.NotFound:
                found = []
    elif wait:
        try:
            found = [screen.wait(tpl, timeout=wait, **opts)]
        except screen.NotFound:
            found = []
    else:
        m = screen.locate(tpl, **opts)
        found = [] if m is None else [m]
    say = (lambda s: typer.echo(s, err=True)) if json_out == "-" else typer.echo
    for m in found:
        say(m.summary())
    if not found:
        say(f"{method}: not on the screen")
    if json_out is not None:
        payload = json.dumps([m.to_dict(mask=False) for m in found] if all_ else
                             (found[0].to_dict(mask=False) if found else None))
        if json_out == "-":
            sys.stdout.write(payload + "\n")
        else:
            atomic_write(json_out, payload)
    if not found:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``tmatch locate`` to the app."""
    app.command("locate")(locate_cmd)
