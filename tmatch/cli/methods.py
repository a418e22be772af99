"""``tmatch methods``: list the registered matchers."""

from __future__ import annotations

import typer


def methods_cmd() -> None:
    """List matcher names with one-line descriptions (names for --method / load_matcher)."""
    from tmatch.registry import describe_matchers

    for name, desc in describe_matchers().items():
        typer.echo(f"{name:10s} {desc}")


def register(app: typer.Typer) -> None:
    app.command("methods")(methods_cmd)
