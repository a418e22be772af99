"""The named protocols (:data:`PROTOCOLS`), resolving ``"a+b"`` names, :func:`make_pair` and the
photo-wise train/valid :func:`split`."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tmatch.data.pairs import Pair, PairSource
from tmatch.data.protocols.classic import Chain, Context, Homography, Negatives, Photometric, Seed
from tmatch.data.protocols.views import Perspective, Rotate, Screen, ZoomIn, ZoomOut
from tmatch.errors import DataError

Protocol = Seed | Homography | Photometric | Negatives | Rotate | ZoomOut | ZoomIn | Perspective | Screen | Chain

#: The named protocols; compose names with ``+``. Entries are frozen: customise with
#: ``dataclasses.replace(PROTOCOLS["homography"], rotation=10)`` and pass the object.
PROTOCOLS: dict[str, Protocol] = {
    "seed": Seed(),
    "homography": Homography(),
    "photometric": Photometric(),
    "warp": Chain((Homography(scale=(0.7, 1.4), rotation=25.0, perspective=0.12),
                   Photometric()), name="warp"),
    "negatives": Negatives(),
    "rotate": Rotate(),
    "zoom-out": ZoomOut(),
    "zoom-in": ZoomIn(),
    "perspective": Perspective(),
    "screen": Screen(),
}


def resolve(protocol: str | Protocol | Sequence) -> tuple[str, list]:
    """``(name, steps)`` of a protocol given as ``"a+b"``, a protocol object or a list of them.

    >>> resolve("homography+photometric")[0]
    'homography+photometric'
    """
    if isinstance(protocol, str):
        names = [p.strip().lower() for p in protocol.split("+") if p.strip()]
        if not names:
            raise DataError("empty protocol name")
        bad = [n for n in names if n not in PROTOCOLS]
        if bad:
            raise DataError(f"unknown protocol {bad[0]!r}; choose from: {', '.join(PROTOCOLS)} "
                            "(compose with '+', e.g. 'homography+photometric')")
        return "+".join(names), [PROTOCOLS[n] for n in names]
    if isinstance(protocol, (list, tuple)):
        steps = []
        for p in protocol:
            steps.extend(resolve(p)[1])
        return "+".join(getattr(s, "name", type(s).__name__.lower()) for s in steps), steps
    if callable(protocol):
        return getattr(protocol, "name", type(protocol).__name__.lower()), [protocol]
    raise DataError(f"a protocol is a name like 'warp' or a protocol object, got {type(protocol).__name__}")


def _name_key(name: str, steps: list) -> int:
    """A stable 32-bit key of a protocol (its name and, for custom objects, its settings)."""
    text = name + "|" + "|".join(repr(s) for s in steps)
    return zlib.crc32(text.encode())


def make_pair(source: PairSource, index: int, protocol: str | Protocol | Sequence = "seed",
              seed: int = 0) -> Pair:
    """Pair ``index`` of ``source`` under ``protocol``, a pure function of ``(seed, protocol,
    index)`` and the source's data.

    Args:
        source: a :class:`~tmatch.data.pairs.PairSource`.
        index: ``0 <= index < len(source)``.
        protocol: a name from :data:`PROTOCOLS`, names joined by ``+``, a protocol object, or a
            list of them.
        seed: the run's seed.

    Returns:
        The :class:`~tmatch.data.pairs.Pair`; ``meta.protocol`` and ``meta.index`` are set.

    >>> from tmatch.data import open_source
    >>> src = open_source(None)
    >>> a, b = make_pair(src, 3, "warp", seed=1), make_pair(src, 3, "warp", seed=1)
    >>> bool((a.image == b.image).all()) and a.meta.protocol == "warp"
    True
    """
    name, steps = resolve(protocol)
    index = source.check_index(index)
    pair = source.base(index)
    ctx = Context(source=source, index=index, seed=int(seed))
    rng = np.random.default_rng([int(seed) & (2**63 - 1), _name_key(name, steps), index])
    for step in steps:
        pair = step(pair, rng, ctx)
    return pair.copy(meta=replace(pair.meta, protocol=name, index=index))


def split(source: PairSource, train_size: float = 0.9, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split pair indices into train and valid by photo, so no photo is in both.

    Photos are ordered by a hash of ``(seed, image key)`` and the first ``train_size`` share
    (rounded, at least one photo on each side when there are two or more) goes to train: the
    same photos land on the same side in every run, and adding photos moves few others.

    Args:
        source: the pair source.
        train_size: share of photos in train, ``0 < train_size <= 1`` (1: no valid split).
        seed: the split's seed.

    Returns:
        ``(train_indices, valid_indices)``, each sorted.

    >>> from tmatch.data import open_source
    >>> tr, va = split(open_source(None), 0.75, seed=0)
    >>> len(set(tr) & set(va)), len(tr) > len(va) > 0
    (0, True)
    """
    if not 0 < float(train_size) <= 1:
        raise DataError(f"train_size must be in (0, 1], got {train_size}")
    keys = source.image_keys()
    photos = sorted(set(keys), key=lambda k: (_hash(seed, k), k))
    n = len(photos)
    if n == 0:
        raise DataError(f"{source.name} source is empty")
    n_train = n if train_size >= 1 else round(n * float(train_size))
    if train_size < 1 and n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    train_photos = set(photos[:n_train])
    train = [i for i, k in enumerate(keys) if k in train_photos]
    valid = [i for i, k in enumerate(keys) if k not in train_photos]
    return train, valid


def _hash(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{int(seed)}:{key}".encode(), digest_size=8).digest()
