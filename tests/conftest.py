"""Shared fixtures: real photos that scikit-image ships (no download)."""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per test process: on a shared 2-core machine, torch's default of one
# thread per core makes small convolutions tens of times slower whenever the other core is busy.
# (Set for the test run only — the library itself never changes thread settings.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from skimage import data as skdata


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return skdata.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    return skdata.coffee()


@pytest.fixture(scope="session")
def rocket() -> np.ndarray:
    return skdata.rocket()


@dataclass
class Result:
    exit_code: int
    output: str  # stdout
    stderr: str


@pytest.fixture()
def run(monkeypatch, capsys):
    """Run the `tmatch` script's entry point in-process: its own exit code and streams (a
    user error is one line on stderr and exit code 2, said by ``tmatch.cli.main.main``)."""

    def _run(*args: str) -> Result:
        from tmatch.cli.main import main

        monkeypatch.setattr(sys, "argv", ["tmatch", *(str(a) for a in args)])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = 0 if e.code is None else int(e.code)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run
