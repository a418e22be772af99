"""The run loop: frames from a source through the tracker into the sinks, stopping cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tmatch.errors import InputError
from tmatch.match import Match
from tmatch.video.checks import check_number, check_outputs
from tmatch.video.display import _Window
from tmatch.video.formats import LAYOUTS
from tmatch.video.outputs import join_parts, leftover_parts
from tmatch.video.render import render_frame
from tmatch.video.sinks import JsonlSink, VideoSink, frame_record
from tmatch.video.sources import Frame, FrameSource
from tmatch.video.tracker import VideoTracker


@dataclass
class FrameResult:
    """What :func:`run_video` hands to its ``on_frame`` callback after each frame.

    Attributes:
        frame: the frame (its image included).
        match: this frame's result, or ``None`` when ``every`` skipped it.
        fps: frames handled per second over the last 30 frames (``None`` at first).
    """

    frame: Frame
    match: Match | None
    fps: float | None


@dataclass
class VideoSummary:
    """How a :func:`run_video` run went.

    Attributes:
        source: the source's name.
        frames_read: readable frames taken from the source.
        frames_matched: frames the template was searched in (``every`` skips the others).
        frames_found: matched frames where it was found.
        frames_corrupt: unreadable frames, skipped.
        frames_written: frames written to the video.
        frames_resized: frames of another size than the first, resized for the video.
        tracked: frames found inside the search window (``track``).
        seconds: wall time of the loop.
        fps: frames matched per second of wall time.
        prepare_ms: the template's one-time preparation.
        stopped: why it ended: ``end``, ``max-frames``, ``quit`` (window), ``callback``,
            ``SIGINT`` or ``SIGTERM``.
        video: the video written, if any; ``codec`` its FourCC.
        jsonl: the JSON lines file, if any.
        segments: video parts left on disk (only if joining them failed).
        frames_failed: matched frames the matcher could not search (a frame smaller than the
            template...), reported as not found; ``error`` says why for the first one.
        leftover_frames: frames of parts that an earlier, killed run left beside ``video``,
            joined into it before this run (whose video then replaced it).
    """

    source: str
    frames_read: int = 0
    frames_matched: int = 0
    frames_found: int = 0
    frames_corrupt: int = 0
    frames_written: int = 0
    frames_resized: int = 0
    tracked: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    prepare_ms: float = 0.0
    stopped: str = "end"
    video: Path | None = None
    codec: str | None = None
    jsonl: Path | None = None
    segments: list[Path] = field(default_factory=list)
    frames_failed: int = 0
    error: str | None = None
    leftover_frames: int = 0

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal (Ctrl-C, SIGTERM)."""
        return self.stopped in ("SIGINT", "SIGTERM")

    def line(self) -> str:
        """One human-readable line."""
        parts = [f"{self.frames_matched} frame(s) matched, found in {self.frames_found}",
                 f"{self.fps:.1f} FPS"]
        if self.frames_corrupt:
            parts.append(f"{self.frames_corrupt} corrupt frame(s) skipped")
        if self.frames_failed:
            parts.append(f"{self.frames_failed} frame(s) not searched ({self.error})")
        if self.frames_resized:
            parts.append(f"{self.frames_resized} frame(s) resized")
        if self.tracked:
            parts.append(f"{self.tracked} found near the last location")
        if self.video is not None:
            parts.append(f"video {self.video} ({self.frames_written} frames, {self.codec})")
        if self.jsonl is not None:
            parts.append(f"JSON lines {self.jsonl}")
        if self.stopped != "end":
            parts.append(f"stopped: {self.stopped}")
        return "; ".join(parts)


class _StopSignals:
    """While active (main thread only): the first SIGINT/SIGTERM asks the loop to stop after the
    current frame; a second one interrupts at once, except while outputs are being closed."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.closing = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.reason is None:
            self.reason = signal.Signals(signum).name
        elif not self.closing:
            raise KeyboardInterrupt

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
                if sig is not None:
                    with contextlib.suppress(ValueError, OSError):
                        self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)
        self._old.clear()


def run_video(source: FrameSource, tracker: VideoTracker, *, out: str | os.PathLike | None = None,
              jsonl: str | os.PathLike | None = None, every: int = 1, layout: str = "overlay",
              show: bool = False, codec: str = "auto", segment_seconds: float = 0.0,
              max_frames: int | None = None, label: str | None = None,
              panel_height: int | None = None,
              on_frame: Callable[[FrameResult], bool | None] | None = None) -> VideoSummary:
    """Match the tracker's template in every frame of ``source`` and write the results.

    Args:
        source: from :func:`open_source`.
        tracker: the prepared template and matcher (:class:`VideoTracker`).
        out: annotated video to write (every readable frame, at the source's frame rate and
            the first frame's size; frames skipped by ``every`` show the last result).
        jsonl: JSON lines to write, one per matched frame (:func:`frame_record`), flushed
            per frame to a hidden staging file that becomes ``jsonl`` at the end (with
            ``segment_seconds``, also appended to ``jsonl`` at every part, so that a killed
            run leaves the lines of its finished parts).
        every: match one frame in ``every``.
        layout: ``"overlay"`` or ``"panels"`` (query | frame | mask | overlay).
        show: live window (``q`` or Esc quits); refused without a display.
        codec: ``"auto"`` or a FourCC for ``out``.
        segment_seconds: write ``out`` in parts of this length that survive a SIGKILL (joined
            at the end); 0 writes one file. Parts a killed run left beside ``out`` are joined
            into it before this run starts.
        max_frames: stop after this many readable frames.
        label: text written at the bottom of each picture (default: the matcher's name).
        on_frame: called after each frame with a :class:`FrameResult`; returning ``False``
            stops the run.

    Returns:
        a :class:`VideoSummary`. Ctrl-C and SIGTERM stop the loop after the current frame and
        still finish the video and the JSON lines. Each output appears at its name only when
        finished (a SIGKILL leaves none there); an error leaves none.
    """
    if int(every) < 1:
        raise InputError(f"--every must be >= 1, got {every}")
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"max frames must be >= 1, got {max_frames}")
    segment_seconds = check_number(segment_seconds, "segment length (seconds)", lo=0)
    check_outputs({"out": out, "jsonl": jsonl}, {"the source": getattr(source, "path", None)},
                  video="out", codec=codec)
    every = int(every)
    label = tracker.name if label is None else label
    summary = VideoSummary(source=source.name, prepare_ms=tracker.prepare_ms)
    segment_frames = int(round(segment_seconds * source.fps)) if segment_seconds > 0 else 0
    if segment_seconds > 0:
        segment_frames = max(1, segment_frames)
    sink = VideoSink(out, source.fps, codec, segment_frames) if out is not None else None
    if out is not None and leftover_parts(out):
        summary.leftover_frames = join_parts(out, codec=codec)
    window = _Window() if show else None
    lines = JsonlSink(jsonl) if jsonl is not None else None
    stamps: deque[float] = deque(maxlen=30)
    last: Match | None = None
    stop = _StopSignals()
    failed = False
    t_start = time.perf_counter()
    try:
        with stop:
            try:
                for frame in source:
                    if stop.reason is not None:
                        break
                    if frame.image is None:
                        summary.frames_corrupt += 1
                        continue
                    if max_frames is not None and summary.frames_read >= max_frames:
                        summary.stopped = "max-frames"
                        break
                    summary.frames_read += 1
                    mine: Match | None = None
                    if (summary.frames_read - 1) % every == 0:
                        mine = last = tracker.step(frame.image)
                        summary.frames_matched += 1
                        summary.frames_found += int(mine.found)
                        if "error" in mine.extra:
                            summary.frames_failed += 1
                            summary.error = summary.error or str(mine.extra["error"])
                        if lines is not None:
                            lines.write(frame_record(frame, mine))
                    if lines is not None and segment_frames and summary.frames_read % segment_frames == 0:
                        lines.checkpoint()  # a killed run keeps the lines of its closed parts
                    stamps.append(time.perf_counter())
                    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) \
                        if len(stamps) > 1 and stamps[-1] > stamps[0] else None
                    if sink is not None or window is not None:
                        pic = render_frame(frame.image, last, tracker.template, layout, fps,
                                           label if mine is not None else f"{label} (held)",
                                           panel_height)
                        if sink is not None:
                            sink.write(pic)
                        if window is not None and not window.show(pic):
                            summary.stopped = "quit"
                            break
                    if on_frame is not None and on_frame(FrameResult(frame, mine, fps)) is False:
                        summary.stopped = "callback"
                        break
            except KeyboardInterrupt:
                stop.reason = stop.reason or "SIGINT"
            except BaseException:
                failed = True  # an error: nothing unfinished appears at the output names
                raise
            finally:
                stop.closing = True
                if stop.reason is not None:
                    summary.stopped = stop.reason
                summary.seconds = time.perf_counter() - t_start
                if window is not None:
                    window.close()
                for output in (lines, sink):
                    if output is not None:
                        output.abort() if failed else output.close()
    finally:
        for output in (lines, sink):  # a close that failed midway
            if output is not None:
                output.abort()
    summary.fps = summary.frames_matched / summary.seconds if summary.seconds > 0 else 0.0
    summary.tracked = tracker.tracked
    if sink is not None:
        summary.video, summary.codec = sink.path, sink.codec
        summary.frames_written, summary.frames_resized = sink.frames_written, sink.resized
        summary.segments = list(sink.parts)
    if lines is not None:
        summary.jsonl = lines.path
    return summary
