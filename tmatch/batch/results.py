"""Results files of a batch run: ``.jsonl``, ``.csv``, ``.parquet`` or a COCO results ``.json``.

JSON lines and CSV grow a row at a time (flushed per image), so a killed run keeps what it
wrote and a rerun of the same command skips those rows. Parquet and COCO files cannot grow;
their rows go to a journal beside them (``.NAME.rows.jsonl``) that becomes the file when the
run ends. :func:`merge_results` joins the files of a sharded run (any formats) into one.

>>> fmt("runs/all.csv"), fmt("runs/r.coco.json")
('csv', 'coco')
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from tmatch.batch.rows import COLUMNS, Row
from tmatch.errors import DataError, InputError
from tmatch.files import atomic_write

#: results-file suffix → format.
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".json": "coco"}


def fmt(path: str | os.PathLike) -> str:
    """The format a results file's suffix names.

    Raises:
        InputError: an unknown suffix (the message lists the known ones).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"results file {path}: unknown suffix {suffix or '(none)'!r}; use one of "
                         f"{', '.join(FORMATS)} (.json: COCO results)")
    return FORMATS[suffix]


def journal_path(path: Path) -> Path:
    """Where the rows of a Parquet or COCO file wait until the run ends."""
    return path.with_name(f".{path.name}.rows.jsonl")


def _read_lines(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(Row.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue  # the line a kill cut short
    return rows


def _read_csv(path: Path) -> list[Row]:
    rows = []
    with open(path, newline="") as fh:
        for d in csv.DictReader(fh):
            try:
                rows.append(Row.from_flat(d))
            except (KeyError, TypeError, ValueError):
                continue  # the line a kill cut short
    return rows


def _read_parquet(path: Path) -> list[Row]:
    pq = _parquet()
    return [Row.from_flat(d) for d in pq.read_table(path).to_pylist()]


def _read_coco(path: Path) -> list[Row]:
    raise InputError(f"{path}: a COCO results file lists found matches only and cannot be read back "
                     "as rows; merge the shards' .jsonl files and write .json from them")


_READERS = {"jsonl": _read_lines, "csv": _read_csv, "parquet": _read_parquet, "coco": _read_coco}


def read_results(path: str | os.PathLike) -> list[Row]:
    """The rows of a results file (a line a kill cut short is left out)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"results file {p} does not exist")
    try:
        return _READERS[fmt(p)](p)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read results file {p}: {e}") from None


def _parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("writing .parquet needs pyarrow: pip install pyarrow "
                         "(or save .jsonl or .csv)") from None
    return pq


def _csv_text(rows: Iterable[Row], header: bool) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        w.writeheader()
    for r in rows:
        w.writerow(r.flat())
    return buf.getvalue()


def coco_ids(ground_truth: str | os.PathLike) -> tuple[dict[str, int], dict[str, int]]:
    """``({image file name: image id}, {category name: category id})`` of a COCO ground-truth
    file, for results whose ids must be the file's own (an image is known by its file name, a
    template by its stem = a category name)."""
    try:
        gt = json.loads(Path(ground_truth).read_text())
        images = {Path(im["file_name"]).name: int(im["id"]) for im in gt["images"]}
        cats = {str(c["name"]): int(c["id"]) for c in gt["categories"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read COCO ground truth {ground_truth}: {e}") from None
    return images, cats


def coco_results(rows: Sequence[Row], ground_truth: str | os.PathLike | None = None) -> list[dict]:
    """The found rows as a COCO results list (:func:`tmatch.interop.to_coco_results`).

    Without ``ground_truth`` the ``image_id`` is the row's image id and the ``category_id`` its
    template id (1-based positions). With a COCO ground-truth file the ids are that file's: the
    image's by its file name, the category's by the template's file stem (rows whose image or
    template the file does not name are left out).
    """
    from tmatch.interop import to_coco_results

    done = [r for r in rows if r.error is None and r.found]
    if ground_truth is None:
        image_ids, cat_ids = [r.image_id for r in done], [r.template_id for r in done]
    else:
        images, cats = coco_ids(ground_truth)
        done = [r for r in done if Path(r.image).name in images and Path(r.template).stem in cats]
        image_ids = [images[Path(r.image).name] for r in done]
        cat_ids = [cats[Path(r.template).stem] for r in done]
    return to_coco_results([r.match() for r in done], image_ids, cat_ids)


def write_results(path: str | os.PathLike, rows: Sequence[Row],
                  coco_gt: str | os.PathLike | None = None) -> Path:
    """Write ``rows`` as one complete results file (atomically; the format from the suffix;
    ``coco_gt``: take a COCO file's ids, see :func:`coco_results`)."""
    p = Path(path)
    kind = fmt(p)
    if kind == "jsonl":
        return atomic_write(p, "".join(json.dumps(r.to_dict()) + "\n" for r in rows))
    if kind == "csv":
        return atomic_write(p, _csv_text(rows, header=True))
    if kind == "coco":
        return atomic_write(p, json.dumps(coco_results(rows, coco_gt)))
    pq = _parquet()
    import pyarrow as pa

    from tmatch.files import atomic_save

    table = pa.Table.from_pylist([r.flat() for r in rows]) if rows else \
        pa.Table.from_pylist([], schema=pa.schema([(c, pa.string()) for c in COLUMNS]))
    return atomic_save(p, lambda tmp: pq.write_table(table, tmp))


def _trim_partial_line(path: Path) -> None:
    """Cut a last line a kill left without its newline (so appended rows start on a line)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def run_path(path: Path) -> Path:
    """Where a results file's run description waits beside it: the configuration its rows were
    made with and the folder their relative paths are relative to."""
    return path.with_name(f".{path.name}.run.json")


def lock_path(path: Path) -> Path:
    """The lock file a run holds while it writes ``path``."""
    return path.with_name(f".{path.name}.lock")


def identity(name: str, root: str | os.PathLike | None = None) -> str:
    """The file a row's path names, however it was spelled: absolute, links resolved, relative
    paths taken from ``root`` (default: the working folder)."""
    return os.path.realpath(os.path.join(root if root is not None else os.getcwd(), os.path.expanduser(name)))


def _describe(config: dict | None) -> str:
    if not config:
        return "an unknown configuration"
    opts = config.get("options") or {}
    text = str(config.get("method")) + (" " + json.dumps(opts, sort_keys=True) if opts else "")
    if config.get("region"):
        text += " in region " + ",".join(str(v) for v in config["region"])
    return text


class ResultsFile:
    """The results file of a run, grown row by row; :attr:`done` holds the rows already there.

    A results file belongs to one run configuration (matcher, options, search region): resuming it with
    another is refused, as is a second process writing it at the same time (a lock). A stored
    row is known by the files it names, whatever the spelling (``kt/a.png``, ``./kt/a.png`` or
    an absolute path): the folder relative paths started from is kept beside the file
    (``.NAME.run.json``, with the configuration).

    Args:
        path: ``.jsonl``, ``.csv``, ``.parquet`` or ``.json`` (COCO results).
        coco_gt: a COCO ground-truth file whose image and category ids a ``.json`` file takes.
        resume: keep the rows already stored (their keys are skipped by the run); ``False``
            starts afresh.
        config: the run's configuration, ``{"method": name, "options": {...}}`` (JSON-ready);
            ``None`` skips the configuration check.

    Raises:
        InputError: another process writes the file, or its rows come from another
            configuration (one line saying how to start a new file).
    """

    def __init__(self, path: str | os.PathLike, resume: bool = True, coco_gt: str | os.PathLike | None = None,
                 config: dict | None = None):
        self.path = Path(path)
        self.coco_gt = coco_gt
        if coco_gt is not None:
            if fmt(self.path) != "coco":
                raise InputError("--coco-gt names the ids of a COCO results file: save as .json")
            coco_ids(coco_gt)  # refuse a bad file before any work
        self.kind = fmt(self.path)
        if self.kind == "parquet":
            _parquet()  # refuse before any work
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"results file {self.path} is not a regular file; give a file name")
        self.live = self.path if self.kind in ("jsonl", "csv") else journal_path(self.path)
        self.done: list[Row] = []
        self.root = os.getcwd()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        try:
            self._open(resume, config)
        except BaseException:
            self.release()
            raise

    def _take_lock(self):
        import fcntl

        f = open(lock_path(self.path), "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise InputError(f"results file {self.path} is being written by another tmatch run; wait for it "
                             "to end, or give another --save") from None
        return f

    def release(self) -> None:
        """Let go of the lock without finishing the file (a failed run: what it stored stays)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _open(self, resume: bool, config: dict | None) -> None:
        stored = self._stored_run()
        if not resume:
            self.live.unlink(missing_ok=True)
        elif self.live.is_file():
            _trim_partial_line(self.live)
            self.done = (_read_csv if self.kind == "csv" else _read_lines)(self.live)
        elif self.kind == "parquet" and self.path.is_file():
            self.done = read_results(self.path)
        if self.done:
            if stored is not None:
                self.root = str(stored.get("root") or self.root)
            self._check_config(config, stored)
        if config is not None or not self.done:
            atomic_write(run_path(self.path), json.dumps({"config": config, "root": self.root}))
        if self.done and self.kind == "parquet" and not self.live.is_file():
            self._append(self.done)  # the journal carries them into the rewritten file

    def _stored_run(self) -> dict | None:
        try:
            d = json.loads(run_path(self.path).read_text())
        except (OSError, ValueError):
            return None
        return d if isinstance(d, dict) else None

    def _check_config(self, config: dict | None, stored: dict | None) -> None:
        if config is None:
            return
        if stored is not None and stored.get("config") is not None:
            same = stored["config"] == config
            theirs = stored["config"]
        else:  # a file from before run descriptions: its rows name their matcher
            methods = {r.method for r in self.done if r.method}
            same = methods <= {config.get("method")}
            theirs = {"method": ", ".join(sorted(methods))}
        if not same:
            raise InputError(f"results file {self.path} holds rows of {_describe(theirs)}, this run is "
                             f"{_describe(config)}: give a new --save file, or --no-resume to replace it")

    def keys(self) -> set[tuple[str, str]]:
        """``(template, image)`` of the stored rows, as :func:`identity` spells them."""
        return {(identity(r.template, self.root), identity(r.image, self.root)) for r in self.done}

    def _append(self, rows: Sequence[Row]) -> None:
        csv_file = self.live.suffix == ".csv"
        header = csv_file and (not self.live.is_file() or self.live.stat().st_size == 0)
        text = _csv_text(rows, header) if csv_file else "".join(json.dumps(r.to_dict()) + "\n" for r in rows)
        with open(self.live, "a", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, rows: Sequence[Row]) -> None:
        """Store ``rows`` now (one image's rows: a kill loses at most the image in progress)."""
        if rows and os.getcwd() != self.root:  # keep relative paths relative to one folder
            rows = [dataclasses.replace(r, template=os.path.abspath(r.template), image=os.path.abspath(r.image))
                    for r in rows]
        if rows:
            self._append(rows)

    def close(self) -> Path:
        """Finish the file (a Parquet or COCO file is written from its journal, which goes) and
        release the lock."""
        try:
            if self.live is not self.path:
                rows = _read_lines(self.live) if self.live.is_file() else []
                write_results(self.path, rows, self.coco_gt)
                self.live.unlink(missing_ok=True)
            elif not self.path.exists():
                write_results(self.path, [])
        finally:
            self.release()
        return self.path


def merge_results(inputs: Sequence[str | os.PathLike], out: str | os.PathLike,
                  coco_gt: str | os.PathLike | None = None) -> tuple[Path, int]:
    """Join the results files of a sharded run (``--shard K/N``) into ``out``: one row per
    template × image (a later file wins a duplicate), ordered by image then template.

    Returns:
        ``(out, number of rows)``.
    """
    if not inputs:
        raise InputError("merge needs at least one results file")
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in inputs):
        raise InputError(f"merge output {out} is also an input; write to a new file")
    fmt(out)
    rows: dict[tuple[str, str], Row] = {}
    for p in inputs:
        for r in read_results(p):
            rows[r.key] = r
    ordered = sorted(rows.values(), key=lambda r: (r.image_id, r.template_id))
    return write_results(out, ordered, coco_gt), len(ordered)
