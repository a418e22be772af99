"""Where a benchmark run lives on disk, and how it is written so that a kill never corrupts it.

Layout of a run folder ``RUN``::

    RUN/spec.json                 what the run measures (data, protocols, seed, limit, shard, methods)
    RUN/records/<method>.jsonl    one JSON line per case: the record and the predicted mask (COCO RLE)
    RUN/results.csv, .parquet     the records as one table (no masks), rewritten at the end
    RUN/masks/<method>.txt        on request: ``case<TAB>H,W:start length ...`` (the original's format)
    RUN/report.md, plots/, galleries/, show/   drawn by :mod:`tmatch.bench.report`

Safety: JSON lines are appended by one process, each batch flushed at once (a killed process
loses nothing written) and ``fsync``-ed at most every second and when the run closes; the reader
ignores a torn last line and :meth:`RunStore.open` cuts it off before appending again. Whole files
(spec, tables, reports) are written to a temporary name and moved into place with ``os.replace``.
A lock file keeps two processes from writing the same run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from tmatch.errors import DataError, TmatchError
from tmatch.files import atomic_write

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(name: str) -> str:
    """A file-name-safe version of a method or case name.

    >>> safe_name("dual-unet"), safe_name("a/b c")
    ('dual-unet', 'a_b_c')
    """
    return _SAFE.sub("_", str(name)) or "_"


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file, ``fsync`` and ``os.replace``."""
    return atomic_write(path, data)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented JSON, written atomically."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing or broken file raises :class:`DataError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON: {e}") from None


def append_lines(path: str | os.PathLike, rows: Iterable[dict[str, Any]], sync: bool = True) -> int:
    """Append ``rows`` as JSON lines in one write and flush it (a killed process loses nothing
    written); with ``sync`` also ``fsync`` (survives a machine crash). Returns the count."""
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    if not text:
        return 0
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        if sync:
            os.fsync(f.fileno())
    return text.count("\n")


def fsync_path(path: str | os.PathLike) -> None:
    """``fsync`` a file that was written and closed earlier."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_lines(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Parsed JSON lines of ``path``; a torn (unterminated or unparsable) last line is skipped.

    A damaged line in the middle raises :class:`DataError` — that is not something a kill leaves.
    """
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    # The element after the last "\n" is either b"" or a torn line; never trust it.
    for n, raw in enumerate(lines[:-1]):
        if not raw.strip():
            continue
        try:
            yield json.loads(raw)
        except json.JSONDecodeError:
            if n == len(lines) - 2:  # a complete-looking but broken last line
                return
            raise DataError(f"{path}: line {n + 1} is corrupt") from None


def repair_lines(path: str | os.PathLike) -> int:
    """Cut a torn last line off a JSON-lines file so that appending can continue.

    Returns the number of bytes removed.
    """
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        data = f.read()
    keep = data.rfind(b"\n") + 1
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    return len(data) - keep


class RunStore:
    """Paths and file operations of one run folder (see the module docstring for the layout).

    >>> import tempfile
    >>> s = RunStore(tempfile.mkdtemp())
    >>> s.records_path("dual-unet").name
    'dual-unet.jsonl'
    """

    SPEC = "spec.json"

    def __init__(self, root: str | os.PathLike, fsync_interval: float = 1.0):
        self.root = Path(root)
        self.fsync_interval = float(fsync_interval)
        self._lock: Any = None
        self._synced: dict[Path, float] = {}
        self._dirty: set[Path] = set()

    # ---------------------------------------------------------------- paths
    @property
    def spec_path(self) -> Path:
        return self.root / self.SPEC

    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    def records_path(self, method: str) -> Path:
        return self.records_dir / f"{safe_name(method)}.jsonl"

    def text_masks_path(self, method: str) -> Path:
        return self.root / "masks" / f"{safe_name(method)}.txt"

    @property
    def csv_path(self) -> Path:
        return self.root / "results.csv"

    @property
    def parquet_path(self) -> Path:
        return self.root / "results.parquet"

    @property
    def report_path(self) -> Path:
        return self.root / "report.md"

    # ----------------------------------------------------------------- state
    def exists(self) -> bool:
        """Whether this folder holds a run (its spec file exists)."""
        return self.spec_path.is_file()

    def require(self) -> "RunStore":
        """Raise :class:`DataError` unless the folder holds a run."""
        if not self.root.is_dir():
            raise DataError(f"run folder not found: {self.root}")
        if not self.exists():
            raise DataError(f"{self.root} is not a benchmark run (no {self.SPEC})")
        return self

    def read_spec(self) -> dict[str, Any]:
        return read_json(self.require().spec_path)

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_json(self.spec_path, spec)

    def methods_on_disk(self) -> list[str]:
        """Method names that have a records file (from the lines' ``method`` field)."""
        out = []
        for p in sorted(self.records_dir.glob("*.jsonl")):
            for row in iter_lines(p):
                out.append(str(row.get("method", p.stem)))
                break
        return out

    def read_records(self, method: str) -> dict[str, dict[str, Any]]:
        """``{case: stored line}`` of one method; a later line for the same case wins."""
        return {str(r["case"]): r for r in iter_lines(self.records_path(method))}

    def done_cases(self, method: str) -> set[str]:
        return set(self.read_records(method))

    # --------------------------------------------------------------- writing
    def open(self) -> "RunStore":
        """Take the run's lock and repair torn last lines, ready for :meth:`append`."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        self.records_dir.mkdir(exist_ok=True)
        f = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise TmatchError(f"{self.root} is being written by another process") from None
        self._lock = f
        for p in self.records_dir.glob("*.jsonl"):
            repair_lines(p)
        return self

    def close(self) -> None:
        """``fsync`` what was appended since the last sync and release the lock."""
        for p in list(self._dirty):
            fsync_path(p)
        self._dirty.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "RunStore":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def append(self, method: str, rows: list[dict[str, Any]]) -> int:
        """Append stored lines of one method. They are flushed at once (a killed process loses
        nothing) and ``fsync``-ed at most every ``fsync_interval`` seconds and on :meth:`close`
        (a machine crash loses at most that much work, recomputed on resume)."""
        import time

        path = self.records_path(method)
        now = time.monotonic()
        sync = now - self._synced.get(path, -1e9) >= self.fsync_interval
        n = append_lines(path, rows, sync=sync)
        if sync:
            self._synced[path] = now
            self._dirty.discard(path)
        else:
            self._dirty.add(path)
        return n
