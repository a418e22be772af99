"""``tmatch match TEMPLATE IMAGE``: find a template in one image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tmatch.cli._options import MethodOrWeights, Roi, Weights, matcher_options, method_for


def match_cmd(
    template: Annotated[Path, typer.Argument(help="Template image file (or the reference photo with --roi).")],
    image: Annotated[Path, typer.Argument(help="Search image file.")],
    method: MethodOrWeights = None,
    roi: Roi = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write an overlay PNG/JPG here.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the result(s) as JSON here.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Report every instance (NMS), not just the best.")] = False,
    max_instances: Annotated[int, typer.Option(help="With --all: most instances reported.", min=1)] = 10,
    min_score: Annotated[Optional[float], typer.Option(help="With --all: drop instances scoring below.")] = None,
    weights: Weights = None,
) -> None:
    """Find TEMPLATE in IMAGE and print one summary line (found, score, box, ms).

    Examples:

      tmatch match logo.png shelf.jpg --method sift --out overlay.png --json result.json

      tmatch match ref.jpg scene.jpg --roi 120,80,64,48 --method ncc

      tmatch match coin.png coins.png --method ncc --all --min-score 0.7

      tmatch match logo.png shelf.jpg --weights runs/neural-seg/best.safetensors   (the file names its matcher)
    """
    from tmatch import io, viz
    from tmatch.files import atomic_write
    from tmatch.registry import load_matcher

    method = method_for(method, weights, "sift")
    tpl = io.read_image(template, "template")
    if roi is not None:
        tpl = io.crop(tpl, io.parse_roi(roi), "ROI")
    img = io.read_image(image, "image")
    matcher = load_matcher(method, **matcher_options(weights))
    if all_:
        results = matcher.match_all(tpl, img, max_instances=max_instances, min_score=min_score)
        typer.echo(f"{method}: {len(results)} instance(s)")
        for r in results:
            typer.echo("  " + r.summary())
    else:
        results = [matcher.match(tpl, img)]
        typer.echo(results[0].summary())
    if json_out is not None:
        payload = [r.to_dict() for r in results] if all_ else results[0].to_dict()
        atomic_write(json_out, json.dumps(payload))
    if out is not None:
        io.write_image(out, viz.overlay(img, results, label=method))


def register(app: typer.Typer) -> None:
    app.command("match")(match_cmd)
