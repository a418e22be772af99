"""`tmatch export` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the verb to the app (nothing yet)."""
