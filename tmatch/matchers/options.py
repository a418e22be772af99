"""Matcher options, declared once per matcher as a table of :class:`Option`.

The table is the one source for what a matcher accepts: :func:`tmatch.load_matcher` checks the
given options against it (an unknown name raises an error listing the accepted ones; a bad value
an error naming the bounds or choices), :meth:`Matcher.options` reports the values in use, and
the CLI can generate typed flags from it.

>>> opt = Option("ratio", float, 0.75, "Lowe's ratio test threshold", low=0.0, high=1.0)
>>> opt.parse("0.8")
0.8
>>> Option("rotations", tuple, (0.0,), "rotations tried").parse("none")
(0.0,)
>>> opt.parse(2)
Traceback (most recent call last):
...
tmatch.errors.InputError: ratio must be in [0.0, 1.0], got 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from tmatch.errors import InputError

#: the value types an option may have; ``tuple`` means a tuple of floats (one number is a
#: one-element tuple), ``dict`` a mapping of further options (``hybrid``'s locator options).
OPTION_TYPES = (bool, int, float, str, tuple, dict, Path)
#: the most values of a list option (``rotations``, ``scales``) unless it says otherwise.
MAX_VALUES = 72
#: the most CPU threads a matcher may be asked for.
MAX_THREADS = 256
#: named values a list option accepts besides numbers, the same in Python, the CLI and the
#: service: ``rotations="full"`` is every 20 degrees, ``"none"`` upright only.
NAMED_VALUES = {"rotations": {"none": (0.0,), "full": tuple(float(a) for a in range(-160, 181, 20))}}


@dataclass(frozen=True)
class Option:
    """One keyword option of a matcher.

    Attributes:
        name: the keyword.
        type: one of :data:`OPTION_TYPES`; a ``Path`` is kept as ``str``.
        default: the value when not given (``None`` allowed when ``optional``).
        help: one line for ``tmatch methods`` and CLI help.
        choices: the accepted values, when a closed set.
        low, high: inclusive numeric bounds (each element of a ``tuple`` option).
        optional: ``None`` is an accepted value.
        max_len: the most values a ``tuple`` option takes (every option that multiplies work is
            bounded: numbers by ``high``, lists by their length).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    optional: bool = False
    max_len: int = MAX_VALUES

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise TypeError(f"option {self.name}: type must be one of {OPTION_TYPES}, got {self.type}")

    def parse(self, value: Any) -> Any:
        """``value`` converted to the option's type and checked.

        Raises:
            InputError: a value of the wrong type, outside the bounds or not among the choices.
        """
        if value is None:
            if self.optional:
                return None
            raise InputError(f"{self.name} needs a value ({self.help})")
        try:
            v = self._convert(value)
        except (TypeError, ValueError):
            raise InputError(f"{self.name} must be {self._kind()}, got {value!r}") from None
        for x in (v if self.type is tuple else (v,)):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                if self.type in (float, tuple) and not math.isfinite(x):
                    raise InputError(f"{self.name} must be finite, got {value!r}")
                if (self.low is not None and x < self.low) or (self.high is not None and x > self.high):
                    raise InputError(f"{self.name} must be in [{self.low}, {self.high}], got {value!r}")
        if self.choices is not None and v not in self.choices:
            raise InputError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        return v

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
            raise TypeError
        if self.type in (int, float, tuple) and isinstance(value, bool):
            raise TypeError  # True is not a number here (it would be taken as 1)
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if self.type is float:
            return float(value)
        if self.type is tuple:
            if isinstance(value, str):  # "full", or "0.5, 1, 2" as on the command line
                named = NAMED_VALUES.get(self.name, {})
                key = value.strip().lower()
                value = named[key] if key in named else [v for v in value.replace(" ", "").split(",") if v]
            items = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(x, bool) for x in items):
                raise TypeError
            if not items:
                raise ValueError
            if len(items) > self.max_len:
                raise ValueError
            return tuple(float(x) for x in items)
        if self.type is dict:
            if not isinstance(value, Mapping):
                raise TypeError
            return dict(value)
        if self.type is Path:
            return str(Path(value))
        return str(value).strip().lower() if self.choices is not None else str(value)

    def _kind(self) -> str:
        named = "".join(f" or {n!r}" for n in NAMED_VALUES.get(self.name, {}))
        return {bool: "true or false", int: "an integer", float: "a number",
                tuple: f"a list of at most {self.max_len} numbers{named}",
                dict: "a mapping", Path: "a path", str: "text"}[self.type]


def resolve(table: Iterable[Option], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The value of every option in ``table``: ``given`` ones parsed, the rest defaults.

    Raises:
        InputError: an option not in the table (the message lists the accepted ones) or a bad value.
    """
    by_name = {o.name: o for o in table}
    unknown = [k for k in given if k not in by_name]
    if unknown:
        raise InputError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"for matcher {owner!r}; accepted: {', '.join(by_name) or '(none)'}")
    return {name: (o.parse(given[name]) if name in given else o.default) for name, o in by_name.items()}


#: the most template variants (scales × rotations) one match may render and encode.
MAX_VARIANTS = 400


def check_grid(scales: tuple, rotations: tuple, owner: str) -> None:
    """The work budget of a scales × rotations search, checked before any work.

    >>> check_grid((1.0,) * 30, (0.0,) * 30, "neural")
    Traceback (most recent call last):
    ...
    tmatch.errors.InputError: neural: 30 scales x 30 rotations = 900 template variants per match; at most 400 (fewer scales or rotations)
    """
    n = len(scales) * len(rotations)
    if n > MAX_VARIANTS:
        raise InputError(f"{owner}: {len(scales)} scales x {len(rotations)} rotations = {n} template variants "
                         f"per match; at most {MAX_VARIANTS} (fewer scales or rotations)")


def with_defaults(table: Iterable[Option], **defaults: Any) -> tuple[Option, ...]:
    """``table`` with some defaults changed (a subclass that shares its parent's options)."""
    table = tuple(table)
    unknown = set(defaults) - {o.name for o in table}
    if unknown:
        raise TypeError(f"no such options: {sorted(unknown)}")
    return tuple(replace(o, default=defaults[o.name]) if o.name in defaults else o for o in table)


#: where and how a torch/ONNX matcher computes (``neural``, ``neural-seg``, ``dual-unet``).
RUNTIME_OPTIONS = (
    Option("runtime", str, "auto", "auto (ONNX on CPU, torch on CUDA), onnx or torch"),
    Option("device", str, "auto", "auto, cpu or cuda"),
    Option("threads", int, None, "CPU threads for inference (default: the runtime's)", low=1, high=MAX_THREADS,
           optional=True),
)


def work_options(default: int) -> tuple[Option, ...]:
    """The working-size option every matcher declares, with the matcher's own default.

    ``work_side`` bounds the memory a match takes: an image whose longer side exceeds it is
    matched downscaled to it, then again at full resolution in a window around the result (or,
    for a template too small to survive the downscale, in full-resolution tiles of that side).
    """
    return (Option("work_side", int, default,
                   "longer image side a match works at; larger images are matched downscaled, then "
                   "refined at full resolution around the result (bounds memory)", low=256, high=16384),)
