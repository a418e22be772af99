"""What ``tmatch data stats`` counts: the pairs and photos a benchmark or a training run can use.

A photo that cannot be read is not counted (bench and train skip it too); it is reported among
the skipped items of the source.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tmatch.data.pairs import PairSource
from tmatch.errors import DataError


@dataclass(frozen=True)
class UsableCounts:
    """Pairs and photos of a source that load, and the photos that do not."""

    pairs: int
    photos: int
    unreadable: int
    unreadable_keys: frozenset[str] = frozenset()


def usable_counts(src: PairSource) -> UsableCounts:
    """Load one pair of every photo of ``src`` (reading each photo once) and count what loads.

    A photo is unreadable when none of its pairs loads: the source then moves on to another
    photo (:meth:`~tmatch.data.pairs.PairSource.first_good`), which is recorded in
    ``src.skipped``.

    >>> from tmatch.data import open_source
    >>> c = usable_counts(open_source(None))
    >>> c.unreadable, c.photos > 0
    (0, True)
    """
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(src.image_keys()):
        by_key[k].append(i)
    pairs = photos = unreadable = 0
    bad: set[str] = set()
    for key, indices in by_key.items():
        try:
            got = src.base(indices[0])
        except DataError:  # not one pair of the source loads
            return UsableCounts(pairs=0, photos=0, unreadable=len(by_key), unreadable_keys=frozenset(by_key))
        if src.image_key(got.meta.index) == key:
            photos += 1
            pairs += len(indices)
        else:  # the source moved past this photo: it cannot be read
            unreadable += 1
            bad.add(key)
    return UsableCounts(pairs=pairs, photos=photos, unreadable=unreadable, unreadable_keys=frozenset(bad))
