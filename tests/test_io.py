"""Every kind of bad input gets a clear InputError (the CLI maps it to exit 2)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import tmatch
from tmatch import io
from tmatch.errors import InputError


def test_grayscale_rgba_16bit_float_converted(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert io.read_image(gray).shape == (*gray.shape, 3)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 7, np.uint8)])
    assert np.array_equal(io.read_image(rgba), astronaut)
    assert np.array_equal(io.read_image(astronaut.astype(np.uint16) * 257), astronaut)
    assert np.abs(io.read_image(astronaut / 255.0).astype(int) - astronaut).max() <= 1


def test_paths_in_any_format(tmp_path, astronaut):
    for ext in (".png", ".jpg", ".bmp", ".tiff"):
        p = tmp_path / f"a{ext}"
        cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
        img = io.read_image(p)
        assert img.shape == astronaut.shape
        assert np.abs(img.astype(int) - astronaut).mean() < 3  # RGB order kept (jpg is lossy)
    p16 = tmp_path / "g16.png"
    cv2.imwrite(str(p16), (cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257))
    assert io.read_image(p16).dtype == np.uint8


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        io.read_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, not pixels")
    with pytest.raises(InputError, match="not an image"):
        io.read_image(p)


def test_truncated_file_is_corrupt(tmp_path, astronaut):
    p = tmp_path / "cut.png"
    ok, buf = cv2.imencode(".png", astronaut)
    p.write_bytes(buf.tobytes()[:200])
    with pytest.raises(InputError):
        io.read_image(p)


def test_empty_file_and_empty_array(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        io.read_image(p)
    with pytest.raises(InputError, match="empty"):
        io.read_image(np.zeros((0, 5, 3), np.uint8))


def test_nan_and_inf_pixels():
    a = np.zeros((10, 10, 3), np.float32)
    a[2, 3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        io.read_image(a)
    a[2, 3, 1] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        io.read_image(a)


def test_template_larger_than_image_is_a_valid_pair(astronaut):
    io.check_pair(astronaut, astronaut[:100, :100])  # no error: the matchers answer it
    assert io.larger_than((600, 10), (512, 512)) and not io.larger_than((512, 512), (512, 512))


def test_tiny_template_still_refused(astronaut):
    with pytest.raises(InputError, match="too small"):
        io.check_pair(astronaut[:3, :10], astronaut)


@pytest.mark.parametrize("roi", [(5, 5, 0, 10), (5, 5, 10, 0)])
def test_zero_area_roi(roi, astronaut):
    with pytest.raises(InputError, match="zero area"):
        io.crop(astronaut, roi)


def test_roi_outside_and_malformed(astronaut):
    with pytest.raises(InputError, match="outside"):
        io.crop(astronaut, (500, 500, 50, 50))
    for bad in ("1,2,3", "a,b,c,d", ""):
        with pytest.raises(InputError, match="x,y,w,h"):
            io.parse_roi(bad)


def test_wrong_shape_and_type():
    with pytest.raises(InputError, match="shape"):
        io.read_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(InputError, match="a path, a numpy array, a PIL image or a torch tensor"):
        io.read_image([[1, 2], [3, 4]])
