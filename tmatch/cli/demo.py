"""``tmatch demo``: the offline demo on the photos scikit-image ships."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tmatch.cli._options import split_names


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the overlay PNGs.")] = Path("tmatch-demo"),
    methods: Annotated[Optional[str], typer.Option(help="Comma-separated matchers (default: all that load).")] = None,
    protocols: Annotated[str, typer.Option(help="Comma-separated protocols: seed, warp, negatives, ...")] = "seed,warp,negatives",
    cases: Annotated[int, typer.Option(help="Pairs per protocol.", min=1)] = 6,
    seed: Annotated[int, typer.Option(help="Random seed of the warps and damage.")] = 0,
) -> None:
    """Cut templates from bundled photos, find them (exact, warped+damaged, absent) with every
    matcher, print a table (method, found, IoU, ms) and write overlays to --out.

    Examples:

      tmatch demo

      tmatch demo --methods sift,ncc --protocols warp --cases 10 --out demo-warp
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tmatch.demo import run_demo, summarize
    from tmatch.errors import InputError
    from tmatch.outputs import Output, check_outputs

    if methods is not None and not split_names(methods):
        raise InputError(f"--methods names no matcher: {methods!r} (e.g. --methods sift,ncc)")
    if not split_names(protocols):
        raise InputError(f"--protocols names no protocol: {protocols!r}")
    check_outputs({"--out": Output(out, "folder")})
    console = Console()
    rows = run_demo(out, methods=split_names(methods) if methods else None,
                    protocols=split_names(protocols), cases=cases, seed=seed,
                    on_skip=lambda name, why: console.print(f"[dim]skipping {escape(name)}: {escape(why)}[/dim]",
                                                                 soft_wrap=True))
    table = Table(title="tmatch demo: mean over cases (IoU vs ground truth; negatives: IoU 1 = correctly absent)")
    for col in ("method", "protocol", "found", "mean IoU", "median ms"):
        table.add_column(col, justify="left" if col in ("method", "protocol") else "right")
    for s in summarize(rows):
        table.add_row(s.method, s.protocol, f"{s.found}/{s.cases}", f"{s.mean_iou:.3f}", f"{s.median_ms:.1f}")
    console.print(table)
    console.print(f"overlays written to {escape(str(out))}/", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
