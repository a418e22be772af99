"""Does fine-tuning the features help the ``neural`` matcher's coarse search? Frozen (shipped
``tmatch/weights/lite0-features.onnx``) against trained (``runs/match-features/lite0-match.onnx``,
from :mod:`tmatch.train.neural_features`) on validation data: the validation split of the photos
and stamps, and our pages of seed 1.

Each pair runs through the real :class:`~tmatch.matchers.neural.NeuralMatcher` — its rendering,
resize factor, centring, projection and correlation over the default grid (scales 0.7–1.41 ×
rotations −20, 0, 20) — with the matcher's feature session swapped for the graph under test.
The strongest coarse peak's similarity (sub-cell, as the matcher computes it) implies a
template centre; the peak is *right* when that centre lies within max(8 px, 0.25 × the
template's side in the image, sqrt(h·w)·scale) of the truth. With ``--refine`` the refined
best candidate (the matcher's ``statistics``) is scored too: *IoU ≥ 0.5* with the true polygon,
presence head ignored (it was fitted on the frozen features).

Projections: ``shipped`` (the presence head's PCA, fitted on the frozen features), ``raw`` (all
40 channels) and ``refit`` (a 16-direction PCA of each graph's own features over training
views, as ``tmatch train --preset neural`` would refit it).

    python benchmarks/features_study.py --pairs 240 --out runs/match-features/study.json

Shape letters: H×W search image, h×w template.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tmatch import geometry
from tmatch.train import neural_features as mf

SIZE_BINS = ((0, 48, "<48"), (48, 80, "48-80"), (80, 10_000, ">=80"))
#: protocols: PairMaker settings on the validation pictures (within the matcher's grid).
PROTOCOLS = {
    # any picture, scale and angle inside the grid's reach, mild perspective, full damage
    "similarity": {"scale": (0.65, 1.5), "rotation": 30.0, "perspective": 0.06, "view_net": (224, 448),
                   "shares": (0.5, 0.3, 0.2, 0.0)},
    # geometry nearly the template's own: what lighting, blur, noise and JPEG alone do
    "photometric": {"scale": (0.92, 1.08), "rotation": 4.0, "perspective": 0.02, "view_net": (224, 448),
                    "shares": (0.5, 0.3, 0.2, 0.0)},
    # UI elements of seed-1 pages searched at another device scale (0.5, 1, 1.25, 1.5, 2)
    "pages": {"scale": (0.65, 1.6), "view_net": (224, 448), "shares": (0.0, 0.0, 0.0, 1.0)},
}


@dataclass
class Record:
    """One pair under one configuration."""

    protocol: str
    pair: int
    kind: str
    size: int  # template's shorter side, px
    scale: float
    angle: float
    config: str  # "<graph>/<projection>"
    right: bool  # coarse peak's implied centre within tolerance
    error_px: float
    iou: float | None  # refined best candidate's IoU (with --refine)
    ms: float


def matcher_for(graph: Path | None, projection: np.ndarray | None | str, refine: bool):
    """A ``NeuralMatcher`` (one thread) whose features run ``graph`` (``None``: the shipped one),
    with the projection ``"shipped"``, ``None`` (raw) or a ``(D, 40)`` array."""
    from tmatch.matchers.neural import NeuralMatcher
    from tmatch.models.features import Lite0Features, onnx_session

    m = NeuralMatcher(threads=1, runtime="onnx", refine=refine)
    if graph is not None:
        m._features = Lite0Features(runtime="onnx", threads=1)
        m._features._impl = onnx_session(graph, 1)
    if not isinstance(projection, str):
        m.head = m.head.with_projection(projection)
    return m


def refit_projection(graph: Path | None, views: list[mf.FeaturePair], dim: int = 16) -> np.ndarray:
    """The ``dim`` principal directions of ``graph``'s centred unit stride-8 features over the
    training ``views`` at the coarse factor (:func:`tmatch.train.neural.fit_projection`)."""
    m = matcher_for(graph, None, False)
    cov = np.zeros((40, 40))
    n = 0
    for p in views:
        r = m.factor(p.template.shape[:2], p.image.shape[:2], m.coarse_side)
        f = m.image_features(p.image, r).units[2].reshape(40, -1)
        cov += f @ f.T
        n += f.shape[1]
    evals, evecs = np.linalg.eigh(cov / max(n, 1))
    order = np.argsort(evals)[::-1][:dim]
    return np.ascontiguousarray(evecs[:, order].T, np.float32)


def coarse_peak(m, template: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``(3, 3)`` the similarity of the strongest coarse peak, as the matcher computes it."""
    from tmatch.matchers.neural.coarse import peaks

    prepared = m.prepare(template)
    co = m._coarse_search(prepared, image)
    y, x = peaks(co.best, 1)[0]
    refine = m.refine
    m.refine = False
    try:
        return m._candidate(prepared, image, co, y, x).hm
    finally:
        m.refine = refine


def make_pairs(pictures: mf.Pictures, protocol: str, n: int, seed: int) -> list[mf.FeaturePair]:
    maker = mf.PairMaker(pictures, **PROTOCOLS[protocol])
    rng = np.random.default_rng(seed)
    return [maker(rng) for _ in range(n)]


def run_study(trained: Path, pairs: int, refine: bool, echo=print) -> list[Record]:
    """Records of every validation pair under each (graph, projection)."""
    valid = mf.load_pictures(1, page_seed=1, echo=echo)
    train = mf.load_pictures(0, page_seed=None, echo=echo)
    fit_views = make_pairs(train, "similarity", 80, 12)
    proj = {"frozen": refit_projection(None, fit_views), "trained": refit_projection(trained, fit_views)}
    configs = {"frozen/shipped": (None, "shipped"), "frozen/raw": (None, None),
               "frozen/refit": (None, proj["frozen"]), "trained/raw": (trained, None),
               "trained/refit": (trained, proj["trained"])}
    refined = {"frozen/shipped", "trained/refit"} if refine else set()
    matchers = {k: matcher_for(g, p, True) for k, (g, p) in configs.items()}
    records: list[Record] = []
    for pi, protocol in enumerate(PROTOCOLS):
        sample = make_pairs(valid, protocol, pairs, 1000 + pi)
        t0 = time.perf_counter()
        for i, p in enumerate(sample):
            h, w = p.template.shape[:2]
            truth = p.centre()
            tol = max(8.0, 0.25 * math.sqrt(h * w) * p.scale)
            true_poly = geometry.template_polygon(p.hom, (h, w))
            for name, m in matchers.items():
                ts = time.perf_counter()
                hm = coarse_peak(m, p.template, p.image)
                c = geometry.project(hm, np.array([[w / 2.0, h / 2.0]]))[0]
                err = float(np.hypot(*(c - truth)))
                iou = None
                if name in refined:
                    _, hr = m.statistics(p.template, p.image)
                    ok = geometry.plausible_homography(hr, (h, w), p.image.shape[:2])
                    iou = float(geometry.polygon_iou(geometry.template_polygon(hr, (h, w)), true_poly)) if ok else 0.0
                records.append(Record(protocol, i, p.kind, int(min(h, w)), round(p.scale, 4), round(p.angle, 2),
                                      name, err <= tol, round(err, 2), iou, round((time.perf_counter() - ts) * 1e3, 1)))
            if (i + 1) % 40 == 0:
                echo(f"{protocol}: {i + 1}/{len(sample)} pairs ({time.perf_counter() - t0:.0f} s)")
    return records


def table(records: list[dict]) -> str:
    """Markdown: top-peak accuracy by protocol and template size for each configuration (and
    refined IoU ≥ 0.5 where measured)."""
    configs = list(dict.fromkeys(r["config"] for r in records))
    protocols = list(dict.fromkeys(r["protocol"] for r in records)) + ["all"]
    head = "| protocol | size | pairs | " + " | ".join(configs) + " |"
    lines = [head, "|" + " --- |" * (3 + len(configs))]
    for prot in protocols:
        for lo, hi, label in SIZE_BINS + ((0, 10_000, "all"),):
            sel = [r for r in records if (prot == "all" or r["protocol"] == prot) and lo <= r["size"] < hi]
            if not sel:
                continue
            cells = []
            for c in configs:
                rc = [r for r in sel if r["config"] == c]
                cells.append(f"{np.mean([r['right'] for r in rc]):.3f}" if rc else "–")
            lines.append(f"| {prot} | {label} | {len(sel) // len(configs)} | " + " | ".join(cells) + " |")
    ref = [c for c in configs if any(r["iou"] is not None for r in records if r["config"] == c)]
    if ref:
        lines += ["", "Refined best candidate, IoU >= 0.5 (presence ignored):", "",
                  "| protocol | size | " + " | ".join(ref) + " |", "|" + " --- |" * (2 + len(ref))]
        for prot in protocols:
            for lo, hi, label in SIZE_BINS + ((0, 10_000, "all"),):
                cells = []
                for c in ref:
                    rc = [r for r in records if r["config"] == c and (prot == "all" or r["protocol"] == prot)
                          and lo <= r["size"] < hi]
                    cells.append(f"{np.mean([r['iou'] >= 0.5 for r in rc]):.3f}" if rc else "–")
                lines.append(f"| {prot} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trained", type=Path, default=Path("runs/match-features/lite0-match.onnx"))
    ap.add_argument("--pairs", type=int, default=240, help="pairs per protocol")
    ap.add_argument("--refine", action="store_true", help="also score the refined best candidate")
    ap.add_argument("--out", type=Path, default=Path("runs/match-features/study.json"))
    ap.add_argument("--report", action="store_true", help="only print the table of --out")
    a = ap.parse_args()
    if not a.report:
        recs = run_study(a.trained, a.pairs, a.refine, echo=lambda s: print(s, flush=True))
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps([asdict(r) for r in recs]))
    print(table(json.loads(a.out.read_text())))


if __name__ == "__main__":
    main()
