from __future__ import annotations

import cv2
import pytest


@pytest.fixture()
def photo(tmp_path, astronaut):
    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return p
