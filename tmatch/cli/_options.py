"""Options shared by several verbs, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Method = Annotated[str, typer.Option("--method", "-m", help="Matcher name (see `tmatch methods`).")]
MethodOrWeights = Annotated[Optional[str], typer.Option(
    "--method", "-m", help="Matcher name (see `tmatch methods`); default: the matcher --weights belongs to.")]
Methods = Annotated[str, typer.Option("--methods", help="Comma-separated matcher names.")]
Roi = Annotated[Optional[str], typer.Option("--roi", help="Take the template as region x,y,w,h of TEMPLATE.")]
Weights = Annotated[Optional[Path], typer.Option("--weights", help="Weights file (.safetensors) for neural matchers.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Output path.")]


def split_names(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def matcher_options(weights: Path | None = None, threads: int | None = None) -> dict:
    """Keyword options for ``load_matcher`` from shared CLI options (only the ones given)."""
    opts: dict = {}
    if weights is not None:
        opts["weights"] = str(weights)
    if threads is not None:
        opts["threads"] = int(threads)
    return opts


def method_for(method: str | None, weights: Path | None, default: str) -> str:
    """The matcher to run: ``method`` when given, else the one the ``weights`` file names in its
    own metadata, else ``default``."""
    if method is not None:
        return method
    if weights is not None:
        from tmatch.models.weights import matcher_of

        return matcher_of(weights)
    return default
