from __future__ import annotations

import cv2
import pytest
from typer.testing import CliRunner

from tmatch.cli.main import app


@pytest.fixture()
def run():
    """Invoke the CLI in-process the way the `tmatch` script does (errors → exit 2)."""
    runner = CliRunner()

    def _run(*args: str):
        from tmatch.errors import TmatchError

        res = runner.invoke(app, [str(a) for a in args])
        if isinstance(res.exception, TmatchError):
            res.exit_code = 2  # what tmatch.cli.main.main does
        return res

    return _run


@pytest.fixture()
def photo(tmp_path, astronaut):
    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return p
