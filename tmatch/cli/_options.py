"""Options shared by several verbs, declared once."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from tmatch.matchers.options import NAMED_VALUES  # named list values ("full", "none")

Method = Annotated[str, typer.Option("--method", "-m", help="Matcher name (see `tmatch methods`).")]
MethodOrWeights = Annotated[Optional[str], typer.Option(
    "--method", "-m", help="Matcher name (see `tmatch methods`); default: the matcher --weights belongs to.")]
Methods = Annotated[str, typer.Option("--methods", help="Comma-separated matcher names.")]
Roi = Annotated[Optional[str], typer.Option(
    "--roi", help="Cut the template out of TEMPLATE as x,y,w,h (to search only part of IMAGE, use --region).")]
SearchRegion = Annotated[Optional[str], typer.Option(
    "--region", help="Search only x,y,w,h of each image (clipped to it); answers stay in image pixels.")]
Weights = Annotated[Optional[Path], typer.Option("--weights", help="Weights file (.safetensors) for neural matchers.")]
WeightsFor = Annotated[Optional[list[str]], typer.Option(
    "--weights-for", help="METHOD=PATH: a weights file for one method (repeatable), e.g. "
                          "dual-unet=runs/dual/best.safetensors.")]
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


def weights_for(items: list[str] | None) -> dict[str, dict]:
    """``["dual-unet=PATH", ...]`` → ``{"dual-unet": {"weights": PATH}}`` (checked: a known
    matcher name, a file that exists)."""
    from tmatch.errors import InputError
    from tmatch.registry import matcher_class

    out: dict[str, dict] = {}
    for item in items or []:
        method, sep, path = item.partition("=")
        method = method.strip().lower()
        if not sep or not method or not path.strip():
            raise InputError(f"--weights-for takes METHOD=PATH, got {item!r}")
        matcher_class(method)  # an unknown name: one line
        if not Path(path).is_file():
            raise InputError(f"--weights-for {method}: weights file not found: {path}")
        out[method] = {"weights": str(path)}
    return out


def method_for(method: str | None, weights: Path | None, default: str) -> str:
    """The matcher to run: ``method`` when given, else the one the ``weights`` file names in its
    own metadata, else ``default``."""
    if method is not None:
        return method
    if weights is not None:
        from tmatch.models.weights import matcher_of

        return matcher_of(weights)
    return default


# --- matcher options as typed flags -------------------------------------------------------
# One flag per option name across the registered matchers (``--rotations``, ``--threads``...),
# generated from each matcher's ``OPTIONS``; the chosen matcher's ``Option.parse`` checks the
# value, and a flag the chosen matcher does not declare is refused naming those that do.

#: options with no flag: mappings (``hybrid``'s ``locator_options``) and ``--weights`` (shared above).
_NO_FLAG = {"weights"}
MATCHER_PANEL = "Matcher options (see `tmatch methods NAME`)"


def option_flags() -> dict[str, tuple[Any, list[str]]]:
    """``{option name: (its Option, names of the matchers that declare it)}`` over every
    registered matcher (the first declaration gives the type and help)."""
    from tmatch.registry import list_matchers, matcher_class

    flags: dict[str, tuple[Any, list[str]]] = {}
    for name in list_matchers():
        for opt in matcher_class(name).option_table().values():
            if opt.type is dict or opt.name in _NO_FLAG:
                continue
            if opt.name in flags:
                flags[opt.name][1].append(name)
            else:
                flags[opt.name] = (opt, [name])
    return flags


def flag_name(option: str) -> str:
    """``"presence_threshold"`` → ``"--presence-threshold"``."""
    return "--" + option.replace("_", "-")


def _flag_param(opt: Any, owners: list[str]) -> inspect.Parameter:
    kind = {bool: Optional[bool], int: Optional[int], float: Optional[float]}.get(opt.type, Optional[str])
    names = [f"{flag_name(opt.name)}/--no-{opt.name.replace('_', '-')}"] if opt.type is bool \
        else [flag_name(opt.name)]
    extra = ""
    if opt.type is tuple:
        named = NAMED_VALUES.get(opt.name, {})
        extra = " Comma-separated numbers" + (f" or {' / '.join(named)}" if named else "") + "."
    helptext = f"{opt.help[:1].upper()}{opt.help[1:]}.{extra} (For {', '.join(owners)}.)"
    info = typer.Option(*names, help=helptext, rich_help_panel=MATCHER_PANEL, show_default=False)
    return inspect.Parameter(f"opt_{opt.name}", inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind, info])


def with_matcher_flags(func: Callable) -> Callable:
    """``func`` with one more keyword parameter per matcher option (``opt_<name>``, ``None``
    unless given), for typer to turn into flags; ``func`` receives them in ``**kwargs``."""
    sig = inspect.signature(func, eval_str=True)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [_flag_param(opt, owners) for opt, owners in option_flags().values()]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def given_options(method: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The matcher options given as flags (``opt_<name>`` keys of ``flags`` that are not
    ``None``), checked against ``method``'s table and parsed by its ``Option.parse``.

    Raises:
        InputError: a flag ``method`` does not declare (naming the matchers that do), or a bad value.
    """
    from tmatch.errors import InputError
    from tmatch.registry import matcher_class

    table = matcher_class(method).option_table()
    known = option_flags()
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if not key.startswith("opt_") or value is None:
            continue
        name = key[4:]
        if name == "threads" and name not in table:
            continue  # an OpenCV matcher: the CLI limits OpenCV's pool instead (pool_threads)
        if name not in table:
            raise InputError(f"{flag_name(name)} does not apply to matcher {method!r}; it applies to: "
                             f"{', '.join(known[name][1])}")
        out[name] = table[name].parse(value)  # a list option parses "0.5,1,2" and named values
    return out


def pool_threads(method: str, flags: dict[str, Any]) -> int | None:
    """``--threads`` for a matcher that declares no ``threads`` option (the OpenCV ones): the
    command runs under :func:`tmatch.threads.limit_threads` with it; ``None`` otherwise."""
    from tmatch.registry import matcher_class

    n = flags.get("opt_threads")
    if n is None or "threads" in matcher_class(method).option_table():
        return None
    if int(n) < 1:
        from tmatch.errors import InputError

        raise InputError(f"--threads must be >= 1, got {n}")
    return int(n)


#: suffixes an overlay image may be written as.
