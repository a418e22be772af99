"""Wall time of the ``tmatch`` command as a user runs it: ``--help``, ``methods`` and ``match``
with ``neural`` (and ``sift``) on one pair, each in a fresh process.

"cold" is the first run of each command (after a run that wrote the byte-code caches, so it is
the process start-up, module imports, building the ONNX sessions and the match); "warm" is the
median of the next ``--repeat`` runs (the OS file cache holds the libraries). The match's own
time (``ms`` on its summary line, cold run) is printed beside it. One more run of each command
under ``-X importtime`` checks that torch is not imported.

Usage::

    .venv/bin/python benchmarks/bench_startup.py                       # this interpreter
    .venv/bin/python benchmarks/bench_startup.py --python .venv-light/bin/python --repeat 5
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sample_pair(folder: Path) -> tuple[Path, Path]:
    """A template cut from a bundled photo, and the photo (written as PNG)."""
    import cv2
    from skimage import data

    img = data.astronaut()
    tpl, scene = folder / "template.png", folder / "scene.png"
    cv2.imwrite(str(scene), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tpl), cv2.cvtColor(img[30:230, 150:350], cv2.COLOR_RGB2BGR))
    return tpl, scene


def timed(python: str, args: list[str], cwd: Path, importtime: bool = False) -> tuple[float, float, str, bool]:
    """``(wall seconds, CPU seconds, stdout, whether torch was imported)`` of ``python -m tmatch
    ARGS`` (the last is only known with ``importtime``, which slows the run: not for timing). CPU
    seconds (user + system, all threads) do not grow with other processes' load as wall time
    does on a shared machine."""
    flags = ["-X", "importtime"] if importtime else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([python, *flags, "-m", "tmatch", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"tmatch {' '.join(args)} failed: {p.stderr[-500:]}")
    return wall, cpu, p.stdout, bool(re.search(r"\|\s+torch$", p.stderr, re.M))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter of the install to measure")
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per command")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tpl, scene = sample_pair(folder)
        commands = {
            "tmatch --help": ["--help"],
            "tmatch methods": ["methods"],
            "tmatch match -m neural (one pair)": ["match", str(tpl), str(scene), "-m", "neural"],
            "tmatch match -m sift (one pair)": ["match", str(tpl), str(scene), "-m", "sift"],
        }
        timed(args.python, ["--help"], folder)  # byte-code caches written
        print(f"interpreter: {args.python}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"| command | cold s | warm s (median of {args.repeat}) | warm min s | warm CPU s (median) "
              "| match ms | torch imported |")
        print("|---|---|---|---|---|---|---|")
        for name, cmd in commands.items():
            cold, _, out, _ = timed(args.python, cmd, folder)
            warm = [timed(args.python, cmd, folder) for _ in range(args.repeat)]
            ms = re.search(r"ms=([\d.]+)", out)
            torch = timed(args.python, cmd, folder, importtime=True)[3]
            print(f"| {name} | {cold:.2f} | {statistics.median(w[0] for w in warm):.2f} | "
                  f"{min(w[0] for w in warm):.2f} | {statistics.median(w[1] for w in warm):.2f} | "
                  f"{ms.group(1) if ms else '-'} | {'yes' if torch else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
