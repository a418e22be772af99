"""The registry of matchers: ``MATCHERS = {name: class}``, ``load_matcher`` and ``list_matchers``.

>>> "sift" in list_matchers()
True
>>> load_matcher("sift").ratio
0.75
"""

from __future__ import annotations

import importlib
from typing import Any

from tmatch.errors import TmatchError

# name -> "module:Class"; classes are imported on first use so that `import tmatch` stays light
# (the neural matchers pull in torch).
MATCHERS: dict[str, str] = {
    "ncc": "tmatch.matchers.ncc:NCCMatcher",
    "sift": "tmatch.matchers.features:SIFTMatcher",
    "orb": "tmatch.matchers.features:ORBMatcher",
    "akaze": "tmatch.matchers.features:AKAZEMatcher",
    "dual-unet": "tmatch.matchers.networks:DualUNetMatcher",
    "neural": "tmatch.matchers.neural:NeuralMatcher",
    "neural-seg": "tmatch.matchers.networks:NeuralSegMatcher",
    "hybrid": "tmatch.matchers.hybrid:HybridMatcher",
    "neural-local": "tmatch.matchers.neural_local:NeuralLocalMatcher",
}


def list_matchers() -> list[str]:
    """Names accepted by :func:`load_matcher`, in a stable order."""
    return list(MATCHERS)


def matcher_class(name: str) -> type:
    """The class registered under ``name``; unknown names raise an error listing valid ones."""
    key = str(name).strip().lower()
    if key not in MATCHERS:
        raise TmatchError(f"unknown matcher {name!r}; choose one of: {', '.join(MATCHERS)}")
    module, _, cls = MATCHERS[key].partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise TmatchError(f"matcher {key!r} is not available: {e}") from None


def load_matcher(name: str, **options: Any) -> Any:
    """Build the matcher ``name`` with ``options`` (declared in the matcher's ``OPTIONS``).

    Unknown options raise an error naming the accepted ones. The options dict is copied.
    """
    return matcher_class(name)(**dict(options))


def accepted_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that matcher ``name`` declares (for options given to every
    matcher of a run, such as ``threads`` or ``batch_size``)."""
    table = matcher_class(name).option_table()
    return {k: v for k, v in options.items() if k in table}


def describe_matchers() -> dict[str, str]:
    """``{name: one-line description}``; a matcher that cannot be imported says why."""
    out = {}
    for name in MATCHERS:
        try:
            out[name] = matcher_class(name).description
        except TmatchError as e:
            out[name] = f"(unavailable: {e})"
    return out
