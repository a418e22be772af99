"""Typed matcher options for requests, built from each matcher's declared option table.

A request names a method and, optionally, a JSON object of options. Each matcher gets a
pydantic model whose fields are its declared options (``Matcher.option_table()``) with their
types, defaults and help,
minus the ones the server owns: files (``weights``: the server never opens a path named in a
request), the runtime and thread count, and nested option dicts. Unknown names and wrong types
are refused (422) before any work is queued; values out of range are refused by the matcher's
own checks when it is built.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tmatch.errors import TmatchError
from tmatch.registry import describe_matchers, list_matchers, matcher_class
from tmatch.serve.errors import ApiError, bad_option

#: options set by the server, never by a request.
SERVER_OWNED = frozenset({"weights", "runtime", "device", "threads", "allow_untrained",
                          "locator_options", "batch_size"})


def unknown_method(name: str) -> ApiError:
    return ApiError(422, "unknown_method",
                    f"unknown method {name!r}; choose one of: {', '.join(list_matchers())}")


def check_method(name: str) -> str:
    """The registry name for ``name`` (case and spaces ignored), or a 422."""
    key = str(name).strip().lower()
    if key not in list_matchers():
        raise unknown_method(name)
    return key


#: option types a request may set, as pydantic field types: a tuple option is a list of numbers
#: or, as in Python and on the command line, text ("full", "0.5,1,2") that the matcher parses.
_FIELD_TYPES: dict[type, Any] = {bool: bool, int: int, float: float, str: str, tuple: list[float] | str}


@functools.cache
def options_model(method: str) -> type[BaseModel]:
    """The pydantic model of the options a request may give ``method`` (extra names refused)."""
    fields: dict[str, Any] = {}
    for opt in matcher_class(method).option_table().values():
        if opt.name in SERVER_OWNED or opt.type not in _FIELD_TYPES:
            continue
        tp = _FIELD_TYPES[opt.type]
        default = list(opt.default) if isinstance(opt.default, tuple) else opt.default
        fields[opt.name] = (tp | None if opt.optional else tp,
                            Field(default, description=opt.help))
    name = "".join(w.capitalize() for w in method.replace("-", "_").split("_")) + "Options"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def parse_options(method: str, text: str | None) -> dict[str, Any]:
    """Validate a JSON object of options for ``method``; only the names given are returned.

    >>> parse_options("sift", '{"ratio": 0.8}')
    {'ratio': 0.8}
    """
    if text is None or not str(text).strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise bad_option(f"options must be a JSON object: {e.msg} at character {e.pos}") from None
    if not isinstance(raw, dict):
        raise bad_option(f"options must be a JSON object, got {type(raw).__name__}")
    model = options_model(method)
    try:
        parsed = model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'options'}: {err['msg']}"
                             for err in e.errors())
        accepted = ", ".join(model.model_fields) or "none"
        raise bad_option(f"bad option for {method!r}: {problems} (accepted: {accepted})") from None
    return {k: v for k, v in parsed.model_dump().items() if k in raw}


def freeze(options: dict[str, Any]) -> tuple:
    """A hashable key for a dict of options."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


@dataclass(frozen=True)
class MethodInfo:
    """One matcher as ``GET /v1/methods`` lists it."""

    name: str
    description: str
    options: dict[str, Any]


def describe() -> list[MethodInfo]:
    """Every registered matcher with its description and request options (JSON schema)."""
    out = []
    for name, text in describe_matchers().items():
        try:
            schema = options_model(name).model_json_schema().get("properties", {})
        except TmatchError:
            schema = {}
        out.append(MethodInfo(name, text, schema))
    return out
