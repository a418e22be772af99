"""Resuming a training run: the ``resume/epoch-NNNN`` pairs (weights + ``state.pt``), reading
a state, the RNG states it holds, publishing copies in the run folder, and the checks on the
run folder before a run starts (nothing to resume, a run already there)."""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from tmatch.errors import CheckpointError, TmatchError
from tmatch.files import atomic_save

STATE_FILE = "state.pt"
LAST = "last.safetensors"
#: ``resume/epoch-NNNN/``: the newest complete pair of weights and state (see
#: :meth:`tmatch.train.loop.Trainer.save`).
RESUME_DIR = "resume"
_PAIR = re.compile(r"^epoch-(\d+)$")


def rng_state(device: torch.device) -> dict:
    """The python, numpy and torch (and CUDA on ``device``) RNG states, as tensors and plain values."""
    np_state = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "python": random.getstate(),
          "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                    "cached": float(np_state[4]),
                    "state": torch.from_numpy(np.asarray(np_state[1], np.int64))}}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(st: dict, device: torch.device) -> None:
    """Restore the RNG states :func:`rng_state` returned."""
    torch.set_rng_state(st["torch"])
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = st["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


def load_state(path: str | os.PathLike) -> dict:
    """Read a ``state.pt`` (never unpickles objects: ``weights_only=True``).

    Raises:
        CheckpointError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no resumable state at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, truncated or not ours: unpickling errors vary
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"cannot read training state {path}: {msg}") from None


def resume_pairs(out: str | os.PathLike) -> list[Path]:
    """The complete ``resume/epoch-NNNN`` folders of a run, newest first."""
    root = Path(out) / RESUME_DIR
    if not root.is_dir():
        return []
    pairs = [p for p in root.iterdir() if p.is_dir() and _PAIR.match(p.name)]
    return sorted(pairs, key=lambda p: int(_PAIR.match(p.name).group(1)), reverse=True)


def resume_candidates(out: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(weights, state)`` pairs to resume from, best first: the complete pairs, newest first,
    then ``last.safetensors`` + ``state.pt`` of a run written before pairs."""
    out = Path(out)
    found = [(p / LAST, p / STATE_FILE) for p in resume_pairs(out)]
    if (out / STATE_FILE).exists():
        found.append((out / LAST, out / STATE_FILE))
    return found


def publish_copy(src: Path, dst: Path) -> Path:
    """Put a copy of the complete file ``src`` at ``dst`` atomically (a hard link when the file
    system allows, else a byte copy)."""

    def link(tmp: Path) -> None:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)

    return atomic_save(dst, link)


def check_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to resume nothing, to start over a run without ``overwrite``, or both flags."""
    if resume and overwrite:
        raise TmatchError("--resume and --overwrite contradict each other: --resume continues the run "
                          f"in {out}, --overwrite starts it again; give one")
    has_run = bool(resume_candidates(out))
    if resume and not has_run:
        raise TmatchError(f"nothing to resume in {out} (no {STATE_FILE}); drop --resume "
                          "to start a new run there")
    if not resume and has_run and not overwrite:
        raise TmatchError(f"{out} already holds a run; pass --resume to continue it or "
                          "--overwrite to start again")
