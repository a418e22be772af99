"""The broadened benchmark as one command: every view protocol on the embedded sample photos,
the screen protocols on our rendered pages, for the matchers issue 12 compares — `ncc` run
multi-scale (0.25–4×, 9 scales), as the targets say "the better of SIFT and multi-scale NCC".

    python benchmarks/protocols_study.py --out runs/study --limit 24 --threads 1
    tmatch bench report runs/study/photos --readme README.md --section protocols
    tmatch bench report runs/study/screens --readme README.md --section screens

Resumable (each run folder keeps its records). OpenCV's sample photos are the final test set:
measure on them once, when a model is final (`--photos /usr/share/doc/opencv-doc/examples/data
--only photos --out runs/heldout`), never between iterations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tmatch.bench import run_bench
from tmatch.bench.report import finish_run
from tmatch.bench.run import DataSpec

METHODS = ("neural-local", "neural", "hybrid", "sift", "ncc")
PHOTO_PROTOCOLS = ("seed", "warp", "rotate", "zoom-out", "zoom-in", "perspective", "negatives")
SCREEN_PROTOCOLS = ("seed", "screen", "negatives")
MULTI_SCALE_NCC = {"ncc": {"scales": (0.25, 4.0), "steps": 9}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--only", choices=("photos", "screens"), default=None)
    ap.add_argument("--photos", default=None, help="folder of photos for the photo protocols "
                    "(default: the embedded sample set)")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    photos = DataSpec.from_options(args.photos) if args.photos else None
    runs = {"photos": (photos, PHOTO_PROTOCOLS), "screens": (DataSpec("screens"), SCREEN_PROTOCOLS)}
    for name, (data, protocols) in runs.items():
        if args.only and name != args.only:
            continue
        out = args.out / name
        run_bench(out, methods, protocols=protocols, data=data, limit=args.limit, seed=0,
                  threads=args.threads, progress=True,
                  method_options={m: o for m, o in MULTI_SCALE_NCC.items() if m in methods})
        print(finish_run(out, gallery=4))


if __name__ == "__main__":
    main()
