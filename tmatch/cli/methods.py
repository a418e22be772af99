"""``tmatch methods [NAME]``: the registered matchers, the default and why; one matcher's options."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def methods_cmd(
    name: Annotated[Optional[str], typer.Argument(help="A matcher: list its options and their flags.")] = None,
) -> None:
    """List matcher names with one-line descriptions (names for --method / load_matcher), and
    say which is the default and why; with NAME, list that matcher's options as CLI flags.

    Examples:

      tmatch methods

      tmatch methods neural
    """
    from tmatch.cli._options import NAMED_VALUES, flag_name, option_flags
    from tmatch.registry import DEFAULT_MATCHER, DEFAULT_REASON, describe_matchers, matcher_class

    if name is None:
        described = describe_matchers()
        width = max(map(len, described))
        for n, desc in described.items():
            mark = " (default)" if n == DEFAULT_MATCHER else ""
            typer.echo(f"{n:{width}s}  {desc}{mark}")
        typer.echo(f"\ndefault: {DEFAULT_MATCHER} — {DEFAULT_REASON}.")
        typer.echo("options of one matcher: tmatch methods NAME")
        return
    cls = matcher_class(name)
    flags = option_flags()
    typer.echo(f"{cls.name}: {cls.description}")
    for opt in cls.option_table().values():
        if opt.name == "weights":
            flag = "--weights"
        elif opt.name in flags:
            flag = flag_name(opt.name)
        else:
            flag = "(Python only)"
        kind = "list" if opt.type is tuple else getattr(opt.type, "__name__", str(opt.type))
        default = ",".join(f"{v:g}" for v in opt.default) if opt.type is tuple and opt.default else opt.default
        bounds = f" [{opt.low}, {opt.high}]" if opt.low is not None or opt.high is not None else ""
        choices = f" one of {', '.join(map(str, opt.choices))}" if opt.choices else ""
        named = f" or {' / '.join(NAMED_VALUES[opt.name])}" if opt.name in NAMED_VALUES else ""
        typer.echo(f"  {flag:22s} {kind}{bounds}{choices}{named}, default {default}: {opt.help}")


def register(app: typer.Typer) -> None:
    app.command("methods")(methods_cmd)
