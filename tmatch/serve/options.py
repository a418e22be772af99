"""Typed matcher options for requests, built from each matcher's ``__init__`` signature.

A request names a method and, optionally, a JSON object of options. Each matcher gets a
pydantic model whose fields are its keyword arguments with their annotated types and defaults,
minus the ones the server owns: files (``weights``: the server never opens a path named in a
request), the runtime and thread count, and nested option dicts. Unknown names and wrong types
are refused (422) before any work is queued; values out of range are refused by the matcher's
own checks when it is built.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from tmatch.errors import TmatchError
from tmatch.registry import describe_matchers, list_matchers, matcher_class
from tmatch.serve.errors import ApiError, bad_option

#: options set by the server, never by a request.
SERVER_OWNED = frozenset({"weights", "runtime", "device", "threads", "allow_untrained",
                          "locator_options", "batch_size"})

_SIMPLE = (bool, int, float, str)


def unknown_method(name: str) -> ApiError:
    return ApiError(422, "unknown_method",
                    f"unknown method {name!r}; choose one of: {', '.join(list_matchers())}")


def check_method(name: str) -> str:
    """The registry name for ``name`` (case and spaces ignored), or a 422."""
    key = str(name).strip().lower()
    if key not in list_matchers():
        raise unknown_method(name)
    return key


def _allowed(tp: Any) -> bool:
    """Scalars, optionals of them, and sequences/tuples of numbers."""
    origin = typing.get_origin(tp)
    if tp in _SIMPLE:
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return all(a is type(None) or _allowed(a) for a in typing.get_args(tp))
    if origin in (tuple, list) or (origin is not None and getattr(origin, "__name__", "") == "Sequence"):
        return all(a is Ellipsis or a in (int, float) for a in typing.get_args(tp))
    return False


@functools.cache
def options_model(method: str) -> type[BaseModel]:
    """The pydantic model of the options a request may give ``method`` (extra names refused)."""
    cls = matcher_class(method)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 — an annotation that cannot be evaluated: fall back to the defaults' types
        hints = {}
    fields: dict[str, Any] = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.name in SERVER_OWNED or p.default is inspect.Parameter.empty:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        tp = hints.get(p.name, type(p.default) if p.default is not None else None)
        if tp is None or not _allowed(tp):
            continue
        if typing.get_origin(tp) is not None and getattr(typing.get_origin(tp), "__name__", "") == "Sequence":
            tp = list[float]
        fields[p.name] = (tp, p.default)
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
