"""Frames per second of ``tmatch video`` at 640×480, per matcher, with and without ``--track``.

The clip is :func:`tmatch.data.clips.synthetic_clip` (the astronaut's face moving, scaling and
turning over the coffee photo; real photos, known truth), held in memory so that decoding does
not count. Two timings per case:

- ``match FPS``: the loop alone (the template prepared once, each frame matched);
- ``+outputs FPS``: the same loop also drawing the overlay and writing the MP4 and the JSON lines
  (RLE masks), which is what ``tmatch video --out X.mp4 --jsonl X.jsonl`` does.

Accuracy columns say whether speed was bought with misses: the share of frames found and of
frames with mask IoU >= 0.8 against the truth. Neural matchers are included when
``tmatch.load_matcher`` can build them; without installed weights they are built untrained
(``allow_untrained=True``) and marked so: their speed is real, their accuracy is not.

Usage::

    .venv/bin/python benchmarks/bench_video.py                      # all matchers, 40 frames
    .venv/bin/python benchmarks/bench_video.py --methods sift,orb --frames 100 --json v.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import tmatch
from tmatch import video
from tmatch.errors import TmatchError

CLASSICAL = ["ncc", "sift", "orb", "akaze"]
NEURAL = ["dual-unet", "neural-seg", "neural", "hybrid"]


@dataclass
class VideoBenchRow:
    """One matcher × tracking setting."""

    method: str
    track: bool
    frames: int
    match_fps: float
    io_fps: float | None
    found: float
    iou_ok: float
    tracked: int
    prepare_ms: float
    note: str = ""


def build(name: str) -> tuple[object | None, str]:
    """The matcher, or ``None`` with the reason; neural ones fall back to untrained weights."""
    try:
        return tmatch.load_matcher(name), ""
    except TmatchError as e:
        if name in NEURAL:
            try:
                return tmatch.load_matcher(name, allow_untrained=True), "untrained: speed only"
            except TmatchError as e2:
                return None, str(e2).splitlines()[0]
        return None, str(e).splitlines()[0]


def run_case(matcher, clip: video.SyntheticClip, track: bool, outputs: Path | None) -> tuple:
    """One pass over the clip; returns ``(summary, matches)``."""
    tracker = video.VideoTracker(matcher, clip.template, track=track)
    matches: list = []
    kwargs = {}
    if outputs is not None:
        kwargs = {"out": outputs / "bench.mp4", "jsonl": outputs / "bench.jsonl"}
    summary = video.run_video(video.open_source(clip.frames, fps=clip.fps), tracker,
                              on_frame=lambda r: matches.append(r.match), **kwargs)
    return summary, matches


def bench(methods: list[str], n_frames: int, repeat: int, with_outputs: bool,
          neural_frames: int = 10) -> list[VideoBenchRow]:
    """Measure every method; returns records (print them with :func:`table`). Neural matchers
    run on the clip's first ``neural_frames`` frames (they are slow on a CPU)."""
    full = video.synthetic_clip(n_frames=n_frames, size=(480, 640), seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in methods:
            matcher, note = build(name)
            if matcher is None:
                print(f"skip {name}: {note}")
                continue
            clip = full
            if name in NEURAL and neural_frames < n_frames:
                k = neural_frames
                clip = video.SyntheticClip(full.frames[:k], full.polygons[:k],
                                           full.homographies[:k], full.template, full.fps)
            warm = video.synthetic_clip(n_frames=2, size=(480, 640))
            run_case(matcher, warm, False, None)
            for track in (False, True):
                best, matches = None, []
                for _ in range(repeat):
                    s, m = run_case(matcher, clip, track, None)
                    if best is None or s.fps > best.fps:
                        best, matches = s, m
                io_fps = None
                if with_outputs:
                    io_fps = max(run_case(matcher, clip, track, Path(tmp))[0].fps
                                 for _ in range(repeat))
                ious = video.clip_ious(matches, clip)
                rows.append(VideoBenchRow(
                    method=name, track=track, frames=len(clip), match_fps=round(best.fps, 1),
                    io_fps=None if io_fps is None else round(io_fps, 1),
                    found=round(best.frames_found / max(1, best.frames_matched), 3),
                    iou_ok=round(float((ious >= 0.8).mean()), 3), tracked=best.tracked,
                    prepare_ms=round(best.prepare_ms, 1), note=note))
                print(f"{name:9s} track={track!s:5s} {rows[-1].match_fps:7.1f} FPS", flush=True)
    return rows


def table(rows: list[VideoBenchRow]) -> str:
    """Markdown table of the records."""
    out = ["| method | --track | match FPS | +outputs FPS | found | IoU>=0.8 | in window | note |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        io_fps = "-" if r.io_fps is None else f"{r.io_fps:.1f}"
        out.append(f"| {r.method} | {'yes' if r.track else 'no'} | {r.match_fps:.1f} | {io_fps} | "
                   f"{r.found:.0%} | {r.iou_ok:.0%} | {r.tracked}/{r.frames} | {r.note} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(CLASSICAL + NEURAL),
                    help="comma-separated matcher names")
    ap.add_argument("--frames", type=int, default=40, help="frames in the clip")
    ap.add_argument("--neural-frames", type=int, default=10, help="frames for neural matchers")
    ap.add_argument("--repeat", type=int, default=2, help="passes per case (the best is kept)")
    ap.add_argument("--no-outputs", action="store_true", help="skip the +outputs timing")
    ap.add_argument("--json", type=Path, default=None, help="write the records here")
    args = ap.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    t0 = time.perf_counter()
    rows = bench(methods, args.frames, max(1, args.repeat), not args.no_outputs,
                 args.neural_frames)
    print()
    print(table(rows))
    print(f"\n640x480, {args.frames} frames, best of {args.repeat}; "
          f"{time.perf_counter() - t0:.0f} s in all; numpy {np.__version__}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
