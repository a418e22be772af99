"""Fixtures for the video tests: generated clips (real photos from skimage) and the CLI runner."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tmatch import io, video
from tmatch.cli.main import app


@pytest.fixture(scope="session")
def small_clip() -> video.SyntheticClip:
    """12 frames of 320x240: the astronaut's face moving, scaling and turning over the coffee."""
    return video.synthetic_clip(n_frames=12, size=(240, 320), seed=1)


@pytest.fixture(scope="session")
def clip_files(tmp_path_factory, small_clip):
    """The small clip as an MP4 file, as a folder of PNG frames, and its template as a PNG."""
    d = tmp_path_factory.mktemp("clip")
    mp4 = video.write_clip(small_clip.frames, d / "clip.mp4", fps=small_clip.fps)
    folder = video.write_clip(small_clip.frames, d / "frames")
    tpl = io.write_image(d / "template.png", small_clip.template)
    big = io.write_image(d / "big.png", np.zeros((300, 200, 3), np.uint8))
    return {"mp4": mp4, "folder": folder, "template": tpl, "big": big, "dir": d}


@pytest.fixture()
def run():
    """Invoke the CLI in-process the way the `tmatch` script does (TmatchError → exit 2)."""
    runner = CliRunner()

    def _run(*args):
        from tmatch.errors import TmatchError

        res = runner.invoke(app, [str(a) for a in args])
        if isinstance(res.exception, TmatchError):
            res.exit_code = 2
        return res

    return _run


def read_video(path) -> list:
    """Every frame OpenCV decodes from ``path`` (BGR), to check what was written."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames
