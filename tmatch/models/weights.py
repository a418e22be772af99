"""Where trained weights live, and which matcher a weights file belongs to.

Shipped weights are ``tmatch/weights/<matcher>.safetensors``. Every weights file says which
matcher it belongs to in its own metadata: a network checkpoint (``neural-seg``, ``dual-unet``)
by ``tmatch_matcher`` (older ones by their config's ``arch``), the ``neural`` matcher's presence
head by ``matcher`` (older ones by ``kind: neural-presence``).

>>> shipped_weights("neural").name
'neural.safetensors'
>>> matcher_of(shipped_weights("neural-seg"))
'neural-seg'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tmatch.errors import CheckpointError

#: the folder of the weights shipped inside the package.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def shipped_weights(matcher: str) -> Path:
    """``tmatch/weights/<matcher>.safetensors`` (it may not exist)."""
    return WEIGHTS_DIR / f"{matcher}.safetensors"


def resolve_weights(weights: str | os.PathLike | None, matcher: str, allow_untrained: bool,
                    how: str) -> Path | None:
    """The weights file a matcher loads: ``weights`` when given, else the shipped one; ``None``
    when none is shipped and ``allow_untrained``.

    Args:
        how: how to get weights, for the error message (e.g. "a checkpoint from `tmatch train`").

    Raises:
        CheckpointError: nothing given, nothing shipped and ``allow_untrained`` false.
    """
    if weights is not None:
        return Path(weights)
    path = shipped_weights(matcher)
    if path.is_file():
        return path
    if allow_untrained:
        return None
    raise CheckpointError(f"no trained weights are installed for {matcher!r} (looked for {path}); pass "
                          f"weights=PATH (CLI: --weights PATH) with {how}, or allow_untrained=True")


def matcher_of(path: str | os.PathLike) -> str:
    """The name of the matcher a ``.safetensors`` weights file belongs to, from its metadata.

    Raises:
        CheckpointError: missing or unreadable file, or one that names no tmatch matcher.
    """
    from tmatch.models.config import OLD_CHECKPOINT_ARCH

    md, _ = read_safetensors(path, tensors=False)
    if md.get("tmatch_matcher"):
        return md["tmatch_matcher"]
    if md.get("matcher"):
        return md["matcher"]
    if md.get("kind") == "neural-presence":
        return "neural"
    if "tmatch_config" in md:
        try:
            arch = json.loads(md["tmatch_config"]).get("arch")
        except (json.JSONDecodeError, AttributeError):
            arch = None
        if isinstance(arch, str):
            return OLD_CHECKPOINT_ARCH.get(arch, arch)
    raise CheckpointError(f"{path} does not say which tmatch matcher it belongs to")


def wrong_matcher(path: str | os.PathLike, wanted: str, owner: str | None = None) -> str:
    """The message for a weights file of another matcher than ``wanted``: what it holds and the
    ``--method`` that loads it (``owner``: the matcher it names, read from it when not given).

    >>> wrong_matcher("seg.safetensors", "neural", owner="neural-seg")
    "seg.safetensors holds weights of the 'neural-seg' matcher, not of 'neural'; use --method neural-seg (or leave --method out: the file names its matcher)"
    """
    if owner is None:
        try:
            owner = matcher_of(path)
        except CheckpointError:
            return f"{path} holds no weights of a tmatch matcher (not of {wanted!r} either)"
    return (f"{path} holds weights of the {owner!r} matcher, not of {wanted!r}; use --method {owner} "
            "(or leave --method out: the file names its matcher)")


def read_safetensors(path: str | os.PathLike, tensors: bool = True) -> tuple[dict[str, str], dict]:
    """``(metadata, {name: numpy array})`` of a ``.safetensors`` file (no tensors read when
    ``tensors`` is false).

    Raises:
        CheckpointError: a missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = dict(fh.metadata() or {})
            arrays = {k: fh.get_tensor(k) for k in fh.keys()} if tensors else {}  # noqa: SIM118
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        raise CheckpointError(f"cannot read weights {path}: {str(e).splitlines()[0] if str(e) else e}") from None
    return meta, arrays
