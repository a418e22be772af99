"""The hard end of what users meet, on our own validation sources: small and plain crops of
640-px photos, the full damage chain, any-angle rotation, zoom 0.25–4x (templates larger than
the image included), UI elements across device scales both ways, absent templates — every
method run case by case in one process, one thread each.

    python benchmarks/hard_study.py --n 40
    python benchmarks/hard_study.py --methods hybrid,sift --only exact,ui-down
    python benchmarks/hard_study.py --n 30 --json runs/hard.json --readme README.md --section hard-wallpapers
    python benchmarks/hard_study.py --from-json runs/hard.json --readme README.md --section hard-wallpapers

Photos: the validation split of the wallpapers (as `validation_study.py`), random boxes whose
shorter side is 32 px and up, texture floor low enough for plain crops (grey std ≥ 12). Pages:
our pages of seed 1 (validation; the benchmark renders seed 0, training seed 2). For every
protocol it prints the mean IoU (absent: share said absent), the misses split into "said
absent" and "wrong place" (found, IoU < 0.5) for templates under and over 64 px, and the
methods' median time per match relative to SIFT's in the same run.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import cv2
import numpy as np

import tmatch
from tmatch import geometry
from tmatch.data import make_pair
from tmatch.data.folder import FolderSource
from tmatch.data.protocols.classic import Chain, Photometric
from tmatch.data.protocols.registry import PROTOCOLS
from tmatch.data.protocols.views import ZoomIn, ZoomOut
from tmatch.data.screens import ScreenSource, screens_dir
from tmatch.threads import limit_threads

DAMAGE = Photometric()
PHOTO = {
    "exact": "seed",
    "warp": "warp",
    "rotate": Chain((PROTOCOLS["rotate"], DAMAGE), name="rotate"),
    "zoom-out": Chain((ZoomOut(scale=(0.25, 0.8)), DAMAGE), name="zoom-out"),
    "zoom-in": Chain((ZoomIn(scale=(1.25, 4.0)), DAMAGE), name="zoom-in"),
    "perspective": Chain((PROTOCOLS["perspective"], DAMAGE), name="perspective"),
    "absent": "negatives",
}
MIN_STD = 12.0
SCREEN = ("ui-up", "ui-down", "ui-absent")
METHODS = {
    "hybrid": {"method": "hybrid"},
    "sift": {"method": "sift"},
    "ncc-ms": {"method": "ncc", "scales": [0.25, 4.0], "steps": 13},
}


def photo_source(root: Path, photos: Path | None = None, per_image: int = 2) -> FolderSource:
    if photos is None:
        from validation_study import validation_folders

        photos, _ = validation_folders(root)
    return FolderSource(photos, pairs_per_image=per_image, size=(0.05, 0.3), min_texture=0.02,
                        max_repeat=0.97, seed=1, min_query_hw=32)


def build_pairs(root: Path, n: int, photo_dir: Path | None = None, per_image: int = 2) -> dict[str, list]:
    tag = "" if photo_dir is None else "-" + Path(photo_dir).name
    cache = root / f"hard-pairs-{n}{tag}.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    photos = photo_source(root, photo_dir, per_image)
    rng = np.random.default_rng(1)
    idx = []  # boxes with grey-level std >= 12: plain ones included, flat ones (no answer) not
    for i in rng.permutation(len(photos)).tolist():
        tpl = photos.base(int(i)).template
        if cv2.cvtColor(tpl, cv2.COLOR_RGB2GRAY).std() >= MIN_STD:
            idx.append(int(i))
        if len(idx) == n:
            break
    out = {name: [make_pair(photos, int(i), protocol=p, seed=1) for i in idx] for name, p in PHOTO.items()}
    screens = ScreenSource(screens_dir(16, 1))
    sidx = rng.permutation(len(screens))[:n].tolist()
    out["ui-up"] = [screens.rendered_pair(int(i), 1.0, float(rng.choice([1.25, 1.5]))) for i in sidx]
    out["ui-down"] = [screens.rendered_pair(int(i), 2.0, 1.0) for i in sidx]
    out["ui-absent"] = [make_pair(screens, int(i), protocol="negatives", seed=1) for i in sidx]
    root.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(out))
    return out


def score(m, pr) -> tuple[float, str]:
    """``(IoU or absent-correct, outcome)``: outcome ``ok``, ``absent`` (said absent) or ``wrong``."""
    if not pr.present:
        return float(not m.found), "ok" if not m.found else "wrong"
    iou = geometry.iou(m.mask, np.asarray(pr.mask, bool)) if m.found else 0.0
    return iou, "ok" if iou >= 0.5 else ("absent" if not m.found else "wrong")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="cases per protocol")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"names among {', '.join(METHODS)} "
                    "or JSON specs {'name': {...}}")
    ap.add_argument("--only", default="", help="comma-separated protocols")
    ap.add_argument("--out", type=Path, default=Path("runs/validation"))
    ap.add_argument("--json", type=Path, default=None, help="also write the per-case records here")
    ap.add_argument("--photos", type=Path, default=None, help="another folder of photos (default: the "
                    "validation wallpapers)")
    ap.add_argument("--per-image", type=int, default=2, help="crops per photo")
    ap.add_argument("--from-json", type=Path, default=None, help="report the records of an earlier run "
                    "(its --json) instead of running")
    ap.add_argument("--readme", type=Path, default=None, help="write the table into this file's "
                    "<!-- SECTION:start --> ... <!-- SECTION:end --> markers")
    ap.add_argument("--section", default="hard", help="the README section's marker name")
    ap.add_argument("--data", default="", help="what the photos are, for the README's header line")
    args = ap.parse_args()
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        rows, times = saved["rows"], saved["times"]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        table = report(rows, times, methods)
        if args.readme is not None:
            write_section(args.readme, args.section, table, saved.get("about", {}))
        return
    cv2.setNumThreads(1)
    specs = json.loads(args.methods) if args.methods.startswith("{") else \
        {k: METHODS[k] for k in args.methods.split(",") if k}
    matchers = {}
    for k, spec in specs.items():
        spec = dict(spec)
        matchers[k] = tmatch.load_matcher(spec.pop("method"), **spec)
    pairs = build_pairs(args.out, args.n, args.photos, args.per_image)
    only = {k for k in args.only.split(",") if k}
    rows, times = [], {k: [] for k in matchers}
    with limit_threads(1):
        for proto, items in pairs.items():
            if only and proto not in only:
                continue
            for i, pr in enumerate(items):
                side = min(pr.template.shape[:2])
                for k, matcher in matchers.items():  # interleaved case by case
                    t0 = time.perf_counter()
                    m = matcher.match(pr.template, pr.image)
                    times[k].append(time.perf_counter() - t0)
                    v, outcome = score(m, pr)
                    rows.append({"protocol": proto, "case": i, "method": k, "value": v, "outcome": outcome,
                                 "side": int(side), "score": float(m.score)})
    table = report(rows, times, list(matchers))
    about = {"photos": args.data or (str(args.photos) if args.photos else "the validation split of the "
                                     "wallpapers (Debian gnome/mate/plasma backgrounds)"),
             "n": args.n, "per_image": args.per_image, "specs": specs,
             "command": "python benchmarks/hard_study.py " + " ".join(
                 a for a in __import__("sys").argv[1:])}
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "times": times, "about": about}))
    if args.readme is not None:
        write_section(args.readme, args.section, table, about)


def write_section(readme: Path, section: str, table: list[str], about: dict) -> None:
    """Replace the text between ``<!-- section:start -->`` and ``<!-- section:end -->``."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} markers")
    head = (f"Generated by `{about.get('command', 'benchmarks/hard_study.py')}` (one run, methods interleaved "
            f"case by case, one thread each) — photos: {about.get('photos', '?')}; pages: our pages of seed 1. "
            "Cells: mean IoU (absent rows: share said absent), then the misses: said absent and wrong "
            "place (found, IoU < 0.5), each as templates under + over 64 px shorter side.")
    body = "\n".join([start, head, "", *table, end])
    a, b = text.index(start), text.index(end) + len(end)
    readme.write_text(text[:a] + body + text[b:])


def report(rows: list[dict], times: dict[str, list], methods: list[str]) -> list[str]:
    """Print the table and return its lines."""
    out: list[str] = []

    def emit(line: str) -> None:
        print(line)
        out.append(line)

    protos = list(dict.fromkeys(r["protocol"] for r in rows))
    emit("| protocol (cases) | " + " | ".join(f"`{k}`" for k in methods) + " |")
    emit("|---|" + "---|" * len(methods))
    for p in protos:
        cells = []
        for k in methods:
            rs = [r for r in rows if r["protocol"] == p and r["method"] == k]
            mean = np.mean([r["value"] for r in rs])
            miss = {o: (sum(r["outcome"] == o and r["side"] < 64 for r in rs),
                        sum(r["outcome"] == o and r["side"] >= 64 for r in rs)) for o in ("absent", "wrong")}
            cells.append(f"{mean:.3f} (abs {miss['absent'][0]}+{miss['absent'][1]}, "
                         f"wrong {miss['wrong'][0]}+{miss['wrong'][1]})")
        n = len([r for r in rows if r["protocol"] == p and r["method"] == methods[0]])
        emit(f"| {p} ({n}) | " + " | ".join(cells) + " |")
    ref = np.median(times["sift"]) if times.get("sift") else None
    med = {k: float(np.median(v)) * 1000 for k, v in times.items() if v}
    emit("")
    emit("Median time per match: " + ", ".join(
        f"`{k}` {v:.0f} ms" + (f" ({v / ref / 1000:.2f}x SIFT)" if ref else "") for k, v in med.items()) + ".")
    print("misses: (templates < 64 px + ≥ 64 px shorter side)")
    return out


if __name__ == "__main__":
    main()
