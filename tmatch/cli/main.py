"""The ``tmatch`` command: wires one module per verb; each verb's body calls library code.

Errors that users can cause (:class:`~tmatch.errors.TmatchError`) become one line on stderr and
exit code 2; typer reports bad options the same way (exit 2).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tmatch.cli import bench, data, demo, export, locate, match, methods, serve, train, video
from tmatch.errors import TmatchError

app = typer.Typer(
    name="tmatch",
    help="Template matching: find a template in images and videos (classical and neural).\n\n"
         "Examples:\n\n"
         "  tmatch demo                      # offline demo on bundled photos\n\n"
         "  tmatch match tpl.png scene.jpg --out overlay.png --json r.json\n\n"
         "  tmatch match icons/ screenshots/ --save results.jsonl --overlays runs/ov\n\n"
         "  tmatch match icons/ shots/ -m neural --rotations full --threads 2 --device cpu\n\n"
         "  tmatch methods",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

def _version(value: bool) -> None:
    if value:
        from tmatch import __version__

        typer.echo(f"tmatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", help="Print the version and stop.", callback=_version, is_eager=True)] = False) -> None:
    pass


for _verb in (match, locate, methods, demo, data, bench, train, export, video, serve):
    _verb.register(app)


def main() -> None:
    """Entry point of the ``tmatch`` script."""
    import warnings

    # a warning is one line on stderr, without the Python source line under it
    warnings.formatwarning = lambda message, category, *_args, **_kw: f"warning: {message}\n"
    # the image decoders' own stderr lines (libpng, libjpeg, OpenCV's log) said in our words, one
    # line per error; not in the service, whose worker threads share stderr with its log
    from tmatch import io

    io.capture_native_messages(sys.argv[1:2] != ["serve"])
    try:
        app()
    except TmatchError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as e:
        from tmatch.registry import install_hint

        hint = install_hint(e)
        if hint is None:
            raise
        print(f"error: this command {hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # a path the system refuses (/proc, a full disk...): one line, never a traceback
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
