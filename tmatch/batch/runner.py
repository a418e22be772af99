"""The batch loop: every template searched in every image, each template prepared once and each
image read once; rows go to a :class:`~tmatch.batch.results.ResultsFile` as each image is done.

>>> import numpy as np, tmatch
>>> from tmatch.match import Match
>>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
>>> m = tmatch.load_matcher("ncc")
>>> [r.box for r in match_templates(m, [m.prepare(img[10:40, 20:60])], [img[10:40, 20:60]], img)]
[(20, 10, 40, 30)]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tmatch.batch.results import ResultsFile
from tmatch.batch.rows import Row
from tmatch.errors import TmatchError
from tmatch.match import Match


def match_templates(matcher: Any, prepared: Sequence[Any], templates: Sequence[np.ndarray],
                    image: np.ndarray, region: Any = None) -> list[Match | TmatchError]:
    """The best match of each prepared template in ``image`` ``(H, W, 3)``; a template the
    matcher refuses here (larger than the image, …) gets its error instead of a match.

    The image's work (keypoints, feature maps) is done once for all templates
    (:meth:`~tmatch.matchers.base.Matcher.match_each`); when the matcher refuses one of them,
    the templates are matched one by one so that the others still get their rows. ``region``:
    ``(x, y, w, h)`` searched instead of the whole image (:mod:`tmatch.region`).
    """
    where = {} if region is None else {"region": region}  # a duck-typed matcher may not take one
    try:
        return list(matcher.match_each(prepared, templates, image, **where))
    except TmatchError:
        pass
    out: list[Match | TmatchError] = []
    for prep, tpl in zip(prepared, templates):
        try:
            out.append(matcher.match_prepared(prep, tpl, image, **where))
        except TmatchError as e:
            out.append(e)
    return out


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text


@dataclass
class Summary:
    """What a batch run did.

    Attributes:
        rows: rows written now; skipped: rows already stored (resumed); found, errors: among the
        rows written now; seconds: wall time; overlays: overlay files written.
    """

    rows: int = 0
    skipped: int = 0
    found: int = 0
    errors: int = 0
    seconds: float = 0.0
    overlays: list[Path] = field(default_factory=list)

    def line(self) -> str:
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.rows} row(s): {self.found} found, {self.errors} error(s); "
                f"{self.skipped} already stored; {self.seconds:.1f} s ({rate:.1f} rows/s)")


def overlay_names(images: Sequence[Path]) -> dict[Path, str]:
    """A distinct overlay file name per image: its stem, with its folder's name in front when two
    images share a stem."""
    stems = [p.stem for p in images]
    return {p: (f"{p.parent.name}-{p.stem}" if stems.count(p.stem) > 1 else p.stem) + ".png" for p in images}


def run_batch(matcher: Any, templates: Sequence[tuple[int, Path]], images: Sequence[tuple[int, Path]],
              results: ResultsFile | None = None, overlays: Path | None = None,
              on_rows: Callable[[list[Row]], None] | None = None,
              warn: Callable[[str], None] = print,
              progress: Callable[[int], Any] | None = None, region: Any = None) -> Summary:
    """Search every template in every image.

    Args:
        matcher: a loaded matcher.
        templates, images: ``(id, path)`` pairs; ids are 1-based positions in the whole lists
            (they stay the same in every shard) and become the rows' ``template_id``/``image_id``.
        results: where rows go; the pairs it already holds are skipped (resume).
        overlays: a folder for one overlay PNG per image (every template's match drawn).
        on_rows: called with each image's rows (e.g. to print them).
        warn: told, in one line, of each file that cannot be read (the run goes on).
        progress: called with the number of images done after each image.
        region: ``(x, y, w, h)`` searched in every image instead of the whole image; an image
            it misses gets error rows.

    Returns:
        a :class:`Summary`.
    """
    from tmatch import io
    from tmatch.batch.results import identity

    t0 = time.perf_counter()
    summary = Summary()
    done = results.keys() if results is not None else set()
    method = getattr(matcher, "name", "")
    tpl_ok: list[tuple[int, Path, np.ndarray, Any]] = []
    tpl_bad: list[tuple[int, Path, str]] = []
    for tid, tp in templates:
        try:
            tpl = io.read_image(tp, "template")
            tpl_ok.append((tid, tp, tpl, matcher.prepare(tpl)))
        except TmatchError as e:
            warn(f"warning: skipped template {tp}: {_reason(e)}")
            tpl_bad.append((tid, tp, _reason(e)))
    names = overlay_names([p for _, p in images]) if overlays is not None else {}
    for n_done, (iid, ip) in enumerate(images, 1):
        i_id = identity(str(ip))
        todo_ok = [t for t in tpl_ok if (identity(str(t[1])), i_id) not in done]
        todo_bad = [t for t in tpl_bad if (identity(str(t[1])), i_id) not in done]
        summary.skipped += len(templates) - len(todo_ok) - len(todo_bad)
        rows = [Row.failed(str(tp), str(ip), tid, iid, method, f"template: {why}") for tid, tp, why in todo_bad]
        if todo_ok:
            rows += _match_image(matcher, todo_ok, iid, ip, method, overlays, names, summary, warn, region)
        if results is not None:
            results.add(rows)
        if on_rows is not None and rows:
            on_rows(rows)
        summary.rows += len(rows)
        summary.found += sum(r.found for r in rows)
        summary.errors += sum(r.error is not None for r in rows)
        if progress is not None:
            progress(n_done)
    summary.seconds = time.perf_counter() - t0
    return summary


def _match_image(matcher: Any, todo: list, iid: int, ip: Path, method: str, overlays: Path | None,
                 names: dict[Path, str], summary: Summary, warn: Callable[[str], None],
                 region: Any = None) -> list[Row]:
    from tmatch import io

    try:
        img = io.read_image(ip, "image")
    except TmatchError as e:
        warn(f"warning: skipped image {ip}: {_reason(e)}")
        return [Row.failed(str(tp), str(ip), tid, iid, method, f"image: {_reason(e)}") for tid, tp, _, _ in todo]
    answers = match_templates(matcher, [t[3] for t in todo], [t[2] for t in todo], img, region)
    rows = [Row.failed(str(tp), str(ip), tid, iid, method, _reason(a)) if isinstance(a, TmatchError)
            else Row.of(str(tp), str(ip), tid, iid, a) for (tid, tp, _, _), a in zip(todo, answers)]
    if overlays is not None:
        from tmatch import viz

        hits = [(Path(tp).stem, a) for (_, tp, _, _), a in zip(todo, answers) if isinstance(a, Match) and a.found]
        drawn = viz.overlay(img, [a for _, a in hits], names=[n for n, _ in hits])  # each tag beside its box
        summary.overlays.append(io.write_image(Path(overlays) / names[ip], drawn))
    return rows


def ids(paths: Sequence[Path]) -> list[tuple[int, Path]]:
    """``[(1, first), (2, second), ...]``."""
    return [(i, p) for i, p in enumerate(paths, 1)]

