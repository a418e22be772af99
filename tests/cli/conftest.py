from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import pytest


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


@pytest.fixture()
def photo(tmp_path, astronaut):
    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    return p
