"""``tmatch video SOURCE``: find a template in every frame of a video file, camera or folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tmatch.cli._options import (
    MethodOrWeights,
    Weights,
    given_options,
    method_for,
    pool_threads,
    with_matcher_flags,
)


def video_cmd(
    source: Annotated[Optional[Path], typer.Argument(
        help="Video file, or folder of frames (natural order). Leave out with --camera.")] = None,
    camera: Annotated[Optional[int], typer.Option(
        "--camera", help="Read a live camera instead (device index, e.g. 0).")] = None,
    template: Annotated[Optional[Path], typer.Option(
        "--template", "-t", help="Template image file (with --roi: cropped from it).")] = None,
    roi: Annotated[Optional[str], typer.Option(
        "--roi", help="Template region x,y,w,h of frame --roi-frame (or of --template).")] = None,
    roi_frame: Annotated[int, typer.Option(
        "--roi-frame", help="Frame that --roi or --select cuts the template from.")] = 0,
    select: Annotated[bool, typer.Option(
        "--select", help="Draw the template with the mouse (needs a display).")] = False,
    method: MethodOrWeights = None,
    weights: Weights = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Annotated video to write (.mp4, .avi, .mkv, .mov, .m4v); it appears "
                            "when complete.")] = None,
    jsonl: Annotated[Optional[Path], typer.Option(
        "--jsonl", help="JSON lines to write, one per matched frame (appears when the run ends).",
    )] = None,
    every: Annotated[int, typer.Option(
        "--every", help="Match one frame in N (the video keeps every frame).")] = 1,
    track: Annotated[bool, typer.Option(
        "--track/--no-track",
        help="Search near the last location first; the whole frame if not there.")] = False,
    track_margin: Annotated[float, typer.Option(
        "--track-margin",
        help="With --track: grow the last box by this times its size per side (>= 0).")] = 0.5,
    layout: Annotated[str, typer.Option(
        "--layout",
        help="'overlay' (the annotated frame) or 'panels' (query | frame | mask | overlay).",
    )] = "overlay",
    show: Annotated[bool, typer.Option(
        "--show", help="Live window, q to quit (needs a display).")] = False,
    codec: Annotated[str, typer.Option(
        "--codec", help="FourCC, or 'auto': avc1 if available, else mp4v (MJPG for .avi).",
    )] = "auto",
    fps: Annotated[Optional[float], typer.Option(
        "--fps", help="Frame rate (folders: 25 unless given; files and cameras: their own).",
    )] = None,
    max_frames: Annotated[Optional[int], typer.Option(
        "--max-frames", help="Stop after this many frames.")] = None,
    segment: Annotated[float, typer.Option(
        "--segment", help="Write the video in parts of this many seconds, which survive a kill "
                          "(joined at the end); 0: one file.")] = 0.0,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar with FPS (when stderr is a terminal).",
    )] = True,
    join: Annotated[Optional[Path], typer.Option(
        "--join", help="Only join the parts a killed --segment run left (OUT.part000.mp4...) "
                       "into OUT, then stop.")] = None,
    **flags: Any,
) -> None:
    """Find the template in every frame of SOURCE; write an annotated video and JSON lines.

    The template is prepared once and matched in each frame; unreadable frames are skipped and
    counted; Ctrl-C or SIGTERM stops after the current frame and leaves both outputs valid.

    Examples:

      tmatch video clip.mp4 --template logo.png --method sift --out out.mp4 --jsonl out.jsonl

      tmatch video clip.mp4 --roi 120,80,64,48 --roi-frame 10 --track --every 2 --out out.mp4

      tmatch video frames/ --template cup.png --method orb --layout panels --out panels.mp4

      tmatch video --camera 0 --select --method orb --show

      tmatch video clip.mp4 -t logo.png -m neural --rotations full --threads 2 --device cpu

      tmatch video --join runs/out.mp4      # the parts of a killed --segment run
    """
    from tmatch import io, video
    from tmatch.errors import InputError
    from tmatch.registry import DEFAULT_MATCHER, load_matcher
    from tmatch.video import checks, outputs

    if join is not None:
        if source is not None or camera is not None or out is not None:
            raise InputError("--join OUT joins leftover parts only; give no SOURCE, --camera "
                             "or --out with it")
        checks.check_outputs({"--join": join}, video="--join", codec=codec)
        frames = outputs.join_parts(join, codec=codec)
        typer.echo(f"joined {frames} frame(s) into {join}")
        return
    if (source is None) == (camera is None):
        raise InputError("give either SOURCE (a video file or a folder of frames) "
                         "or --camera INDEX")
    if select and (template is not None or roi is not None):
        raise InputError("--select draws the template; do not combine it with --template or --roi")
    if template is None and roi is None and not select:
        raise InputError("give the template: --template FILE, --roi x,y,w,h (cut from frame "
                         "--roi-frame) or --select")
    if layout not in video.LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(video.LAYOUTS)}, got {layout!r}")
    # Every option and output path is judged before any work, and nothing is written then.
    method = method_for(method, weights, DEFAULT_MATCHER)
    options = given_options(method, flags)
    threads = pool_threads(method, flags)
    if weights is not None:
        options["weights"] = str(weights)
    # (numbers here rather than as typer ranges: one line each, NaN refused too)
    if fps is not None:
        checks.check_fps(fps, "--fps")
    for name, value, lo in (("--segment", segment, 0), ("--track-margin", track_margin, 0),
                            ("--camera", camera, 0), ("--roi-frame", roi_frame, 0),
                            ("--every", every, 1), ("--max-frames", max_frames, 1)):
        if value is not None:
            checks.check_number(value, name, lo=lo)
    checks.check_outputs({"--out": out, "--jsonl": jsonl},
                         {"SOURCE": source, "--template": template}, video="--out", codec=codec)
    for flag, wanted in (("--select", select), ("--show", show)):
        problem = video.display_problem() if wanted else None
        if problem:
            raise InputError(f"{flag} needs a display: {problem}")
    box = io.parse_roi(roi) if roi is not None else None
    tpl = None
    if template is not None:
        tpl = io.read_image(template, "template")
        if box is not None:
            tpl = io.crop(tpl, box, "ROI")
    matcher = load_matcher(method, **options)

    from tmatch.threads import limit_threads

    with limit_threads(threads), video.open_source(camera if camera is not None else source, fps=fps) as src:
        if tpl is None:
            frame = src.frame(roi_frame)
            if box is None:
                box = video.select_roi(frame)
            tpl = io.crop(frame, box, f"ROI of frame {roi_frame}")
        tracker = video.VideoTracker(matcher, tpl, track=track, margin=track_margin)
        total = src.frame_count
        if max_frames is not None:
            total = min(max_frames, total or max_frames)
        on_frame, bar = _progress(total, progress)
        try:
            summary = video.run_video(src, tracker, out=out, jsonl=jsonl, every=every,
                                      layout=layout, show=show, codec=codec,
                                      segment_seconds=segment, max_frames=max_frames,
                                      label=method, on_frame=on_frame)
        finally:
            if bar is not None:
                bar.close()
    if summary.leftover_frames:
        typer.echo(f"parts of {out} left by an earlier run were joined into it "
                   f"({summary.leftover_frames} frames), then replaced by this run", err=True)
    typer.echo(summary.line())
    if summary.segments:
        parts = ", ".join(str(p) for p in summary.segments)
        typer.echo(f"video parts left unjoined: {parts}", err=True)
    if summary.interrupted:
        import signal

        raise typer.Exit(128 + int(getattr(signal, summary.stopped)))


def _progress(total: int | None, enabled: bool):
    """A tqdm bar on stderr (only when it is a terminal) and the callback that advances it."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=None, dynamic_ncols=True,
               desc="video")
    if bar.disable:
        bar.close()
        return None, None
    found = [0, 0]

    def on_frame(r) -> None:
        if r.match is not None:
            found[0] += 1
            found[1] += int(r.match.found)
        if r.fps is not None:
            bar.set_postfix_str(f"{r.fps:.1f} FPS, found {found[1]}/{found[0]}",
                                refresh=False)
        bar.update(1)

    return on_frame, bar


def register(app: typer.Typer) -> None:
    """Add ``tmatch video`` to the app."""
    app.command("video")(with_matcher_flags(video_cmd))
