"""Shared fixtures: real photos that scikit-image ships (no download)."""

from __future__ import annotations

import numpy as np
import pytest
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
