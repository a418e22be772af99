"""``data stats`` counts what bench and train can use: unreadable photos are not photos."""

from __future__ import annotations

import shutil

from tmatch.data import open_source, sample_dir
from tmatch.data.stats import usable_counts


def test_unreadable_files_are_not_counted(tmp_path):
    photos = sorted((sample_dir() / "images").glob("*.jpg"))[:3]
    for p in photos:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "zz-garbage.jpg").write_text("not a photo")
    (tmp_path / "zz-truncated.jpg").write_bytes(photos[0].read_bytes()[:2000])
    src = open_source(tmp_path, kind="folder")
    c = usable_counts(src)
    assert (c.photos, c.unreadable) == (3, 2)
    assert c.pairs == 3 * src.pairs_per_image
    assert src.skipped.total == 2


def test_stats_cli_reports_them(tmp_path, capsys, monkeypatch):
    import sys

    from tmatch.cli.main import main

    for p in sorted((sample_dir() / "images").glob("*.jpg"))[:2]:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "bad.png").write_text("nope")
    monkeypatch.setattr(sys, "argv", ["tmatch", "data", "stats", str(tmp_path), "--kind", "folder"])
    try:
        main()
    except SystemExit as e:
        assert e.code in (0, None)
    out = capsys.readouterr().out
    assert "8 pairs from 2 photos (1 unreadable photo(s) not counted)" in out
    import re

    tr, va = map(int, re.search(r"(\d+) train / (\d+) valid", out).groups())
    assert tr + va == 8  # the split counts the readable photos only
