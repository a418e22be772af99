"""Photo-folder source: random, textured, non-repeating boxes; deterministic; bad files skipped."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tmatch.data import FolderSource, make_pair, open_source
from tmatch.data.folder import repeat_score, texture_score
from tmatch.errors import DataError
from tmatch.io import write_image


@pytest.fixture()
def photo_dir(tmp_path, astronaut, coffee, chelsea, rocket):
    root = tmp_path / "photos"
    for name, img in [("a.jpg", astronaut), ("b/coffee.png", coffee), ("c.png", chelsea),
                      ("d.jpg", rocket)]:
        write_image(root / name, img)
    (root / "notes.txt").write_text("not a photo")
    return root


def test_feature_boxes_are_textured_unique_and_large_enough(photo_dir):
    src = open_source(photo_dir, pairs_per_image=3)
    assert isinstance(src, FolderSource) and len(src) == 12
    assert src.image_keys()[:4] == ["a.jpg"] * 3 + ["b/coffee.png"]
    for i in range(len(src)):
        p = src.base(i)
        x, y, w, h = p.meta.box
        assert min(w, h) >= 32 and p.meta.source == "folder"
        assert np.array_equal(p.template, p.image[y:y + h, x:x + w])
        gray = cv2.cvtColor(p.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        assert texture_score(gray[y:y + h, x:x + w]) >= src.min_texture
        assert repeat_score(gray, (x, y, w, h)) <= src.max_repeat


def test_feature_flat_and_repeating_patches_are_rejected(astronaut):
    flat = np.full((100, 100), 128, np.float32)
    assert texture_score(flat) == 0.0
    tile = astronaut[100:164, 180:244].mean(axis=2).astype(np.float32)
    wall = np.tile(tile, (4, 4))
    assert repeat_score(wall, (64, 64, 64, 64)) > 0.95
    assert repeat_score(astronaut.mean(axis=2).astype(np.float32), (180, 100, 64, 64)) < 0.9


def test_feature_boxes_are_deterministic_and_seeded(photo_dir):
    a = FolderSource(photo_dir, seed=1)
    b = FolderSource(photo_dir, seed=1)
    c = FolderSource(photo_dir, seed=2)
    assert [a.base(i).meta.box for i in range(8)] == [b.base(i).meta.box for i in range(8)]
    assert [a.base(i).meta.box for i in range(8)] != [c.base(i).meta.box for i in range(8)]
    w1, w2 = make_pair(a, 5, "warp", seed=3), make_pair(b, 5, "warp", seed=3)
    assert np.array_equal(w1.image, w2.image)


def test_feature_unreadable_and_tiny_photos_are_skipped(photo_dir, astronaut):
    (photo_dir / "broken.jpg").write_bytes(b"not a jpeg")
    write_image(photo_dir / "tiny.png", astronaut[:40, :40])
    src = FolderSource(photo_dir, pairs_per_image=2)
    names = [src.base(i).meta.image_name for i in range(len(src))]
    assert "broken.jpg" not in names and "tiny.png" not in names
    assert src.skipped.counts["unreadable image"] == 1
    assert src.skipped.counts["image too small"] == 1


def test_exception_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        open_source(tmp_path / "empty", kind="folder")
    with pytest.raises(DataError, match="bad option"):
        open_source(tmp_path / "empty", kind="folder", pairs_per_photo=2)
