"""`tmatch match` on folders and globs: one results file, resume, shards and merge, COCO."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tmatch.batch import read_results


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture()
def folders(tmp_path, astronaut, chelsea, coffee):
    """icons/ (2 crops) and shots/ (3 photos and one file that is not an image)."""
    _write(tmp_path / "icons" / "face.png", astronaut[100:220, 150:260])
    _write(tmp_path / "icons" / "cat.png", chelsea[50:200, 100:250])
    for i, img in enumerate([astronaut, chelsea, coffee]):
        _write(tmp_path / "shots" / f"s{i + 1}.png", img)
    (tmp_path / "shots" / "s4.png").write_text("not an image")
    return tmp_path / "icons", tmp_path / "shots"


def test_folders_give_one_row_per_template_and_image(run, folders, tmp_path):
    icons, shots = folders
    save, ov = tmp_path / "r.jsonl", tmp_path / "ov"
    res = run("match", icons, shots, "-m", "ncc", "--save", save, "--overlays", ov)
    assert res.exit_code == 0, res.stderr
    rows = read_results(save)
    assert len(rows) == 8 and "8 row(s)" in res.output
    by = {(r.template.split("/")[-1], r.image.split("/")[-1]): r for r in rows}
    assert by["face.png", "s1.png"].found and by["face.png", "s1.png"].box == [150, 100, 110, 120]
    assert by["cat.png", "s2.png"].found and by["cat.png", "s2.png"].box == [100, 50, 150, 150]
    bad = [r for r in rows if r.error]
    assert len(bad) == 2 and all(r.image.endswith("s4.png") and "cannot read" in r.error for r in bad)
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "s4.png" in warnings[0]
    assert sorted(p.name for p in ov.iterdir()) == ["s1.png", "s2.png", "s3.png"]


def test_rerun_skips_stored_rows_and_redoes_only_missing_ones(run, folders, tmp_path, monkeypatch):
    icons, shots = folders
    save = tmp_path / "r.csv"
    assert run("match", icons, shots, "-m", "ncc", "--save", save).exit_code == 0
    lines = save.read_text().splitlines()
    save.write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])  # killed while writing row 4
    calls = []
    from tmatch.matchers.ncc import NCCMatcher

    real = NCCMatcher.match_each
    monkeypatch.setattr(NCCMatcher, "match_each",
                        lambda self, prepared, *a: calls.extend(prepared) or real(self, prepared, *a))
    res = run("match", icons, shots, "-m", "ncc", "--save", save)
    assert res.exit_code == 0 and "3 already stored" in res.output
    rows = read_results(save)
    assert len(rows) == 8 and len({r.key for r in rows}) == 8
    assert len(calls) == 3  # templates matched: rows 4-8 minus the two error rows of the unreadable image


def test_shards_merge_into_the_rows_of_one_run(run, folders, tmp_path):
    icons, shots = folders
    assert run("match", icons, shots, "-m", "ncc", "--save", tmp_path / "all.jsonl").exit_code == 0
    for k in range(2):
        res = run("match", icons, str(shots / "*.png"), "-m", "ncc", "--shard", f"{k}/2",
                  "--save", tmp_path / f"part-{k}.csv")
        assert res.exit_code == 0, res.stderr
    assert len(read_results(tmp_path / "part-0.csv")) == 4
    res = run("match", "--merge", tmp_path / "part-0.csv", tmp_path / "part-1.csv", "--save", tmp_path / "m.jsonl")
    assert res.exit_code == 0 and "merged 8 row(s)" in res.output
    whole, merged = read_results(tmp_path / "all.jsonl"), read_results(tmp_path / "m.jsonl")
    assert [(r.key, r.found, r.box) for r in merged] == [(r.key, r.found, r.box) for r in whole]


def test_coco_results_evaluate_with_cocoeval(run, folders, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    icons, shots = folders
    save = tmp_path / "r.json"
    assert run("match", icons, shots, "-m", "ncc", "--threshold", "0.8", "--save", save).exit_code == 0
    # ground truth: image ids and category ids are the 1-based positions in the sorted lists
    gt = {"images": [{"id": i, "file_name": f"s{i}.png", "height": 512, "width": 512} for i in (1, 2, 3)],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "face"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [150, 100, 110, 120],
                           "area": 13200, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [100, 50, 150, 150],
                           "area": 22500, "iscrowd": 0}]}
    gt["images"][1].update(height=300, width=451)
    gt["images"][2].update(height=400, width=600)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    coco = COCO(str(tmp_path / "gt.json"))
    ev = COCOeval(coco, coco.loadRes(str(save)), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] > 0.99  # AP@[.5:.95]


def test_coco_gt_gives_the_ground_truths_own_ids(run, folders, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    icons, shots = folders
    gt = {"images": [{"id": 11, "file_name": "s1.png", "height": 512, "width": 512},
                     {"id": 12, "file_name": "s2.png", "height": 300, "width": 451}],
          "categories": [{"id": 9, "name": "cat"}, {"id": 5, "name": "face"}],
          "annotations": [{"id": 1, "image_id": 11, "category_id": 5, "bbox": [150, 100, 110, 120],
                           "area": 13200, "iscrowd": 0},
                          {"id": 2, "image_id": 12, "category_id": 9, "bbox": [100, 50, 150, 150],
                           "area": 22500, "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    save = tmp_path / "r.json"
    res = run("match", icons, shots, "-m", "ncc", "--threshold", "0.8", "--save", save, "--coco-gt", tmp_path / "gt.json")
    assert res.exit_code == 0, res.stderr
    entries = json.loads(save.read_text())
    assert sorted((e["image_id"], e["category_id"]) for e in entries) == [(11, 5), (12, 9)]  # s3 is not in gt
    coco = COCO(str(tmp_path / "gt.json"))
    ev = COCOeval(coco, coco.loadRes(str(save)), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] > 0.99
    res = run("match", icons, shots, "--save", tmp_path / "r.csv", "--coco-gt", tmp_path / "gt.json")
    assert res.exit_code == 2 and "save as .json" in res.stderr


def test_printing_rows_without_save(run, folders):
    icons, shots = folders
    res = run("match", icons / "face.png", shots / "s1.png", shots / "s3.png", "-m", "ncc")
    assert res.exit_code == 0
    assert len(res.output.splitlines()) == 2 and "found=True" in res.output.splitlines()[0]


@pytest.mark.parametrize("flag", [["--out", "o.png"], ["--json", "r.json"], ["--all"], ["--roi", "1,1,5,5"]])
def test_single_pair_flags_are_refused_on_folders(run, folders, flag):
    res = run("match", *folders, *flag)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and "one pair" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_save_suffix_and_missing_input_are_one_line_errors(run, folders, tmp_path):
    icons, shots = folders
    res = run("match", icons, shots, "--save", tmp_path / "r.txt")
    assert res.exit_code == 2 and "unknown suffix" in res.stderr
    res = run("match", icons, tmp_path / "nowhere")
    assert res.exit_code == 2 and "not a file, a folder or a glob" in res.stderr
    res = run("match", "--merge", tmp_path / "a.jsonl")
    assert res.exit_code == 2 and "--save" in res.stderr


def test_progress_bar_on_a_terminal_shows_rate_and_keeps_warnings_whole(run, folders, tmp_path, monkeypatch):
    import sys

    icons, shots = folders
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    res = run("match", icons, shots, "-m", "ncc", "--save", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.stderr
    assert "img/s" in res.stderr and "ETA" in res.stderr
    assert any("warning: skipped image" in line and line.rstrip().endswith("s4.png")
               for line in res.stderr.splitlines())
    res = run("match", icons, shots, "-m", "ncc", "--save", tmp_path / "q.jsonl", "--no-progress")
    assert "img/s" not in res.stderr
