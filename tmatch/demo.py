"""The offline demo: templates cut from photos that scikit-image ships, searched in the same
photos and in warped, damaged copies, by every registered matcher.

Computation only (:func:`run_demo` returns rows); the CLI prints the table and the overlays are
drawn with :mod:`tmatch.viz`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tmatch import geometry, io, viz
from tmatch.errors import TmatchError
from tmatch.registry import list_matchers, load_matcher


@dataclass
class DemoRow:
    """One matcher on one case."""

    case: str
    protocol: str
    method: str
    found: bool
    present: bool
    iou: float
    ms: float


@dataclass
class DemoSummary:
    """One matcher on one protocol, over all cases."""

    method: str
    protocol: str
    cases: int
    found: int
    mean_iou: float
    median_ms: float


def run_demo(out_dir: str | Path, methods: Sequence[str] | None = None,
             protocols: Sequence[str] = ("seed", "warp", "negatives"), cases: int = 6, seed: int = 0,
             on_skip: Callable[[str, str], None] | None = None) -> list[DemoRow]:
    """Run the demo and write one overlay panel per case into ``out_dir``.

    Args:
        out_dir: folder for the PNG panels (created).
        methods: matcher names; default every registered matcher that can be built offline.
        protocols: pair protocols from :mod:`tmatch.data` (seed = exact crop, warp = homography +
            photometric damage, negatives = template absent).
        cases: pairs per protocol, drawn from the embedded sample set.
        on_skip: called with ``(method, reason)`` for a matcher that cannot be built.

    Returns:
        one :class:`DemoRow` per (case, protocol, method).
    """
    from tmatch.data import make_pair, open_source
    from tmatch.data.protocols import resolve

    for protocol in protocols:  # every request checked before the first file is written
        resolve(protocol)
    matchers = {}
    for name in methods or list_matchers():
        try:
            matchers[name] = load_matcher(name)
        except TmatchError as e:
            if methods:  # asked for by name: that is an error
                raise
            if on_skip:
                on_skip(name, str(e))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = open_source(None)
    n = len(src)
    picks = np.linspace(0, n - 1, num=min(cases, n)).round().astype(int)
    rows: list[DemoRow] = []
    for protocol in protocols:
        for i in picks:
            pair = make_pair(src, int(i), protocol=protocol, seed=seed)
            case = f"{protocol}-{int(i):03d}"
            tiles, titles = [pair.template], ["template"]
            truth_poly = pair.polygon if pair.present else None
            for name, m in matchers.items():
                r = m.match(pair.template, pair.image)
                iou = geometry.iou(r.mask, pair.mask)
                rows.append(DemoRow(case, protocol, name, bool(r.found), bool(pair.present), iou, r.ms))
                tiles.append(viz.overlay(pair.image, r, truth=truth_poly))
                titles.append(f"{name} IoU {iou:.2f} {r.ms:.0f}ms")
            io.write_image(out / f"{case}.png", viz.panel(tiles, titles, height=220))
    return rows


def summarize(rows: Sequence[DemoRow]) -> list[DemoSummary]:
    """Per (method, protocol): cases, found count, mean IoU, median ms — in first-seen order."""
    groups: dict[tuple[str, str], list[DemoRow]] = {}
    for r in rows:
        groups.setdefault((r.method, r.protocol), []).append(r)
    return [DemoSummary(m, p, len(g), sum(r.found for r in g),
                        float(np.mean([r.iou for r in g])), float(statistics.median(r.ms for r in g)))
            for (m, p), g in groups.items()]
