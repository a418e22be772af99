"""Writing files so that a kill never leaves a torn one, and the cache folder.

Every output of tmatch appears at its final name only when complete: a file is written to a
hidden temporary name beside it, flushed to disk and moved into place with ``os.replace``; a
folder is built under a hidden temporary name and renamed into place.

Atomic replacement is for regular files only. A symbolic link is written through: its target
is replaced (the link stays a link). A path that is neither a regular file nor a folder — a
device such as ``/dev/stdout`` or ``/dev/null``, a named pipe — is written to as it is, never
replaced by a regular file. A write that fails (a full disk, ``/dev/full``) raises
:class:`~tmatch.errors.OutputError`, one line naming the path.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", "hello").read_text()
'hello'
>>> with atomic_dir(d / "out") as tmp:
...     _ = (tmp / "x.json").write_text("{}")
>>> sorted(p.name for p in (d / "out").iterdir())
['x.json']
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def cache_root() -> Path:
    """``$TMATCH_CACHE`` or ``~/.cache/tmatch``: exported graphs, the sample set."""
    env = os.environ.get("TMATCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tmatch"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_target(path: str | os.PathLike) -> Path:
    """Where writing ``path`` lands: a symbolic link's final target (created when the link
    dangles), else ``path`` itself."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def is_special(path: str | os.PathLike) -> bool:
    """Whether ``path`` (links followed) exists and is neither a regular file nor a folder: a
    device, a named pipe, a socket — written to in place, never replaced."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def atomic_write(path: str | os.PathLike, data: str | bytes, sync: bool = True) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` via a temporary file and
    ``os.replace``; the parent folder is created. ``sync`` fsyncs before the rename."""
    return atomic_save(path, lambda tmp: _write(tmp, data, sync))


def _write(tmp: Path, data: str | bytes, sync: bool) -> None:
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def atomic_save(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Let ``writer(tmp_path)`` write a file, then move it to ``path`` (for writers that need a
    path: ``torch.save``, ``safetensors.save_file``, ``cv2.imwrite``). A failure removes the
    temporary file and leaves any earlier ``path`` as it was."""
    from tmatch.errors import OutputError

    path = Path(path)
    final = write_target(path)
    if is_special(final):
        _write_through(path, final, writer)
        return path
    tmp = _tmp_name(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        writer(tmp)
        # the mode of the file replaced, or a new file's (some writers create 0600 files)
        os.chmod(tmp, final.stat().st_mode & 0o7777 if final.exists() else 0o666 & ~_umask())
        os.replace(tmp, final)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _write_through(path: Path, final: Path, writer: Callable[[Path], object]) -> None:
    """Let ``writer`` fill a private temporary file, then copy its bytes into the device or
    pipe ``final`` (opened as it is: a pipe blocks until someone reads it)."""
    from tmatch.errors import OutputError

    with tempfile.TemporaryDirectory(prefix="tmatch-") as d:
        tmp = Path(d) / f"out{path.suffix}"
        try:
            writer(tmp)
            with open(tmp, "rb") as src, open(final, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``final``; on success it becomes ``final``.

    With ``replace`` an existing ``final`` is swapped out (old folder removed after the new one
    is in place); without it, a ``final`` that appeared meanwhile (another process won a race)
    is kept and the new folder discarded. A failure leaves ``final`` as it was.
    """
    final = write_target(final)  # a link to a folder stays a link; its target is replaced
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would stay on the published folder
    old: Path | None = None
    try:
        yield tmp
        if final.exists() and replace:
            old = final.with_name(f".{final.name}.{os.getpid()}.old")
            os.replace(final, old)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (ONNX cache keys, a graph tied to its weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
