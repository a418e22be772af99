"""Fit every matcher's confidence curve (``tmatch/weights/calibration.json``) from the per-case
records of ``hard_study.py`` runs, and check it on another run's records.

    python benchmarks/calibrate.py --fit runs/validation/hard-wallpapers.json \\
        --check runs/validation/hard-opencv.json --out tmatch/weights/calibration.json

A record is one answer: its protocol (present or absent template), the method's score and the
outcome (``ok``; ``absent``: said absent though present; ``wrong``: found in the wrong place, or
found though absent). Found answers are right when ``ok`` (IoU >= 0.5); absent answers are right
when the protocol's template is absent. Each method's found and absent answers get an isotonic
curve (:func:`tmatch.calibration.fit_curve`). The check prints, per method, the share right
among answers with confidence >= 0.9 and >= 0.5 and the expected calibration error (ECE, 10
bins) on the other run — data the curves were not fitted on.

Records are fitted only for methods at their default options (the spec's name must be the
matcher's, e.g. ``hybrid``, not ``hybrid-imagenet``; ``ncc-ms`` is skipped).
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np

from tmatch.calibration import Calibration, fit_curve
from tmatch.registry import MATCHERS

ABSENT_PROTOCOLS = {"absent", "ui-absent"}


def answers(records: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """``{method: {"found": bool[], "score": float[], "right": bool[]}}`` from hard_study rows."""
    out: dict[str, dict[str, list]] = {}
    for r in records:
        present = r["protocol"] not in ABSENT_PROTOCOLS
        found = (r["outcome"] != "absent") if present else (r["outcome"] == "wrong")
        d = out.setdefault(r["method"], {"found": [], "score": [], "right": []})
        d["found"].append(found)
        d["score"].append(float(r["score"]))
        d["right"].append(r["outcome"] == "ok")
    return {k: {n: np.asarray(v) for n, v in d.items()} for k, d in out.items()}


def fit(records: list[dict]) -> dict[str, dict]:
    table = {}
    for method, a in answers(records).items():
        if method not in MATCHERS:
            continue
        entry = {"n_found": int(a["found"].sum()), "n_absent": int((~a["found"]).sum())}
        for kind, sel, increasing in (("found", a["found"], True), ("absent", ~a["found"], False)):
            if sel.sum() >= 8:
                c = fit_curve(a["score"][sel], a["right"][sel], increasing=increasing)
                entry[kind] = {"scores": list(c.scores), "p": list(c.p)}
        table[method] = entry
    return table


def check(table: dict[str, dict], records: list[dict]) -> list[str]:
    from tmatch.calibration import _curve

    lines = ["| method | answers | right when confidence >= 0.9 | right when >= 0.5 | ECE |", "|---|---|---|---|---|"]
    for method, a in answers(records).items():
        if method not in table:
            continue
        cal = Calibration(_curve(table[method].get("found")), _curve(table[method].get("absent")))
        conf = np.array([cal.confidence(f, s) if cal.confidence(f, s) is not None else np.nan
                         for f, s in zip(a["found"], a["score"])])
        ok = ~np.isnan(conf)
        conf, right = conf[ok], a["right"][ok]
        cells = []
        for t in (0.9, 0.5):
            sel = conf >= t
            cells.append(f"{right[sel].mean():.3f} of {int(sel.sum())}" if sel.any() else "none")
        bins = np.clip((conf * 10).astype(int), 0, 9)
        ece = sum(abs(right[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
                  for b in range(10) if (bins == b).any())
        lines.append(f"| `{method}` | {len(conf)} | {cells[0]} | {cells[1]} | {ece:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, nargs="+", required=True, help="hard_study --json files to fit on")
    ap.add_argument("--check", type=Path, nargs="*", default=[], help="hard_study --json files to check on")
    ap.add_argument("--out", type=Path, default=None, help="write the curves here")
    args = ap.parse_args()
    fit_rows, about = [], []
    for f in args.fit:
        saved = json.loads(f.read_text())
        fit_rows += saved["rows"]
        about.append(saved.get("about", {}).get("photos", str(f)))
    table = fit(fit_rows)
    for line in check(table, fit_rows):
        print(line)
    for f in args.check:
        print(f"\nchecked on {f}:")
        for line in check(table, json.loads(f.read_text())["rows"]):
            print(line)
    if args.out is not None:
        doc = {"about": {"fitted_on": about, "pages": "our pages of seed 1 (validation)",
                         "command": "python benchmarks/calibrate.py --fit " + " ".join(map(str, args.fit)),
                         "date": datetime.date.today().isoformat(),
                         "right": "found: polygon IoU >= 0.5 with the truth; absent: the template is not there"},
               "matchers": table}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
