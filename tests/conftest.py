"""Shared fixtures: real photos that scikit-image ships (no download)."""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per test process: on a shared 2-core machine, torch's default of one
# thread per core makes small convolutions tens of times slower whenever the other core is busy.
# (Set for the test run only — the library itself never changes thread settings.)
os.environ.setdefault("OMP_NUM_THREADS", "1")

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
