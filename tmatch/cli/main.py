"""The ``tmatch`` command: wires one module per verb; each verb's body calls library code.

Errors that users can cause (:class:`~tmatch.errors.TmatchError`) become one line on stderr and
exit code 2; typer reports bad options the same way (exit 2).
"""

from __future__ import annotations

import sys

import typer

from tmatch.cli import bench, data, demo, export, match, methods, serve, train, video
from tmatch.errors import TmatchError

app = typer.Typer(
    name="tmatch",
    help="Template matching: find a template in images and videos (classical and neural).\n\n"
         "Examples:\n\n"
         "  tmatch demo                      # offline demo on bundled photos\n\n"
         "  tmatch match tpl.png scene.jpg --method sift --out overlay.png --json r.json\n\n"
         "  tmatch methods",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _verb in (match, methods, demo, data, bench, train, export, video, serve):
    _verb.register(app)


def main() -> None:
    """Entry point of the ``tmatch`` script."""
    try:
        app()
    except TmatchError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
