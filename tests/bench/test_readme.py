"""The README results section is generated from stored records, never typed by hand."""

from __future__ import annotations

import shutil

import pytest

from tmatch.bench.report import README_END, README_START, load_table, protocol_table, update_readme
from tmatch.errors import InputError


def test_readme_section_is_written_between_markers_from_records(sample_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sample_run.run, run)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_START}\nold text\n{README_END}\nafter\n")
    update_readme(run, readme)
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# x\n\nbefore\n") and text.endswith("after\n")
    df = load_table(run)
    rows = protocol_table(df, sorted(set(df["method"])))
    for r in rows:
        if r.protocol == "seed":
            assert f"{r.mean_iou:.3f}" in text  # the numbers come from the records
    assert (tmp_path / "docs" / "results" / "iou.png").is_file()
    assert "](docs/results/iou.png)" in text
    update_readme(run, readme)  # idempotent: one section, not two
    assert readme.read_text().count(README_START) == 1


def test_readme_without_markers_is_refused(sample_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(InputError, match="markers"):
        update_readme(sample_run.run, readme)


def test_named_sections_leave_the_others_alone(sample_run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_START}\nheld-out\n{README_END}\n<!-- protocols:start -->\nold\n"
                      "<!-- protocols:end -->\n")
    update_readme(sample_run.run, readme, section="protocols")
    text = readme.read_text()
    assert "held-out" in text and "old" not in text  # only the named section was replaced
    assert (tmp_path / "docs" / "protocols" / "iou.png").is_file() and "](docs/protocols/iou.png)" in text
