"""Hostile invocations of the CLI: each one exits with code 2, says why on stderr (one line for
tmatch's own errors; typer's usage box for an option typer itself rejects), prints no traceback
and leaves no file behind.

The table covers ``data``, ``bench``, ``train``, ``export``, ``demo`` and ``match`` (``video``'s
own table is in ``tests/video/test_cli.py``). A template larger than the image is not here: it
is a valid request, answered (``tests/cli/test_match_cli.py``). ``{ck}`` is a small ``neural-seg`` checkpoint, ``{huge}`` one whose config asks for
200,000 channels, ``{misfit}`` one whose tensors do not fit its config, ``{presence}`` a
``neural`` presence head. Each case runs in a fresh folder holding ``tpl.png``, ``img.png``,
``afile.txt``, ``adir/a.txt``, ``empty/`` and ``bad.yaml``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

# (id, arguments, a piece of the message expected on stderr, or None for typer's own check)
CASES = [
    # data samples
    ("samples-into-file", ["data", "samples", "afile.txt"], "is a file"),
    ("samples-under-file", ["data", "samples", "afile.txt/sub"], "is a file, not a folder"),
    # data show
    ("show-out-folder", ["data", "show", "--out", "adir"], "is a folder"),
    ("show-out-bad-suffix", ["data", "show", "--out", "pairs.xyz"], "unknown image suffix"),
    ("show-out-no-suffix", ["data", "show", "--out", "pairs"], "no image suffix"),
    ("show-out-under-file", ["data", "show", "--out", "afile.txt/p.png"], "is a file, not a folder"),
    ("show-missing-source", ["data", "show", "missing_dir"], "missing_dir"),
    ("show-count-0", ["data", "show", "--count", "0"], None),
    ("show-count-huge", ["data", "show", "--count", "1000"], None),
    ("show-index-negative", ["data", "show", "--index", "-1"], None),
    ("show-bad-protocol", ["data", "show", "--protocol", "bogus"], "bogus"),
    ("show-bad-kind", ["data", "show", "--kind", "bogus"], "bogus"),
    ("show-out-is-source", ["data", "show", "tpl.png", "--out", "tpl.png"], "input"),
    # data stats
    ("stats-train-size-nan", ["data", "stats", "--train-size", "nan"], None),
    ("stats-train-size-2", ["data", "stats", "--train-size", "2"], None),
    ("stats-missing", ["data", "stats", "missing_dir"], "missing_dir"),
    ("stats-empty-folder", ["data", "stats", "empty"], "empty"),
    ("stats-max-side-tiny", ["data", "stats", "--max-side", "10"], None),
    ("stats-text-file", ["data", "stats", "afile.txt"], "afile.txt"),
    # bench
    ("bench-out-file", ["bench", "--out", "afile.txt", "--limit", "1"], "is a file"),
    ("bench-out-under-file", ["bench", "--out", "afile.txt/run", "--limit", "1"], "is a file, not a folder"),
    ("bench-bad-method", ["bench", "--methods", "bogus", "--out", "run", "--limit", "1"], "bogus"),
    ("bench-bad-protocol", ["bench", "--protocols", "bogus", "--out", "run", "--limit", "1"], "bogus"),
    ("bench-workers-0", ["bench", "--workers", "0", "--out", "run"], None),
    ("bench-limit-0", ["bench", "--limit", "0", "--out", "run"], None),
    ("bench-batch-0", ["bench", "--batch", "0", "--out", "run"], None),
    ("bench-threads-0", ["bench", "--threads", "0", "--out", "run"], None),
    ("bench-shard-out-of-range", ["bench", "--shard", "5/2", "--out", "run", "--limit", "1"], "shard"),
    ("bench-shard-text", ["bench", "--shard", "abc", "--out", "run", "--limit", "1"], "shard"),
    ("bench-bad-device", ["bench", "--device", "tpu", "--out", "run", "--limit", "1"], "--device"),
    ("bench-compare-one", ["bench", "--compare", "sift", "--out", "run", "--limit", "1"], "--compare"),
    ("bench-weights-for-no-eq", ["bench", "--weights-for", "foo", "--out", "run", "--limit", "1"], "METHOD=PATH"),
    ("bench-weights-for-missing", ["bench", "--weights-for", "sift=missing.safetensors", "--out", "run",
                                   "--limit", "1"], "not found"),
    ("bench-missing-data", ["bench", "--data", "missing_dir", "--out", "run", "--limit", "1"], "missing_dir"),
    ("bench-missing-coco", ["bench", "--coco", "missing.json", "--images", "adir", "--out", "run"], "missing.json"),
    ("bench-empty-data", ["bench", "--data", "empty", "--out", "run", "--limit", "1"], "empty"),
    ("bench-show-not-a-run", ["bench", "show", "adir", "seed-000000"], "adir"),
    ("bench-show-out-folder", ["bench", "show", "adir", "seed-000000", "--out", "empty"], "is a folder"),
    ("bench-show-out-is-run", ["bench", "show", "adir", "seed-000000", "--out", "adir"], "input"),
    ("bench-show-out-suffix", ["bench", "show", "adir", "seed-000000", "--out", "p.xyz"], "unknown image suffix"),
    ("bench-report-missing", ["bench", "report", "missing_run"], "missing_run"),
    ("bench-merge-out-file", ["bench", "merge", "adir", "--out", "afile.txt"], "is a file"),
    ("bench-merge-missing", ["bench", "merge", "missing_run", "--out", "merged"], "missing_run"),
    # train
    ("train-no-config", ["train"], "give a preset"),
    ("train-bad-preset", ["train", "bogus-preset"], "bogus-preset"),
    ("train-out-file", ["train", "smoke", "--out", "afile.txt"], "is a file"),
    ("train-out-under-file", ["train", "smoke", "--out", "afile.txt/run"], "is a file, not a folder"),
    ("train-lr-nan", ["train", "smoke", "--lr", "nan", "--out", "run"], None),
    ("train-lr-zero", ["train", "smoke", "--lr", "0", "--out", "run"], "--lr"),
    ("train-lr-negative", ["train", "smoke", "--lr", "-1", "--out", "run"], None),
    ("train-epochs-0", ["train", "smoke", "--epochs", "0", "--out", "run"], None),
    ("train-input-size-33", ["train", "smoke", "--input-size", "33", "--out", "run"], "input_size"),
    ("train-input-size-huge", ["train", "smoke", "--input-size", "100000", "--out", "run"], "input_size"),
    ("train-resume-overwrite", ["train", "--resume", "--overwrite", "--out", "adir"], "contradict"),
    ("train-resume-nothing", ["train", "--resume", "--out", "adir"], "nothing to resume"),
    ("train-resume-no-out", ["train", "--resume"], "--out"),
    ("train-bad-yaml", ["train", "bad.yaml", "--out", "run"], "bad.yaml"),
    ("train-two-configs", ["train", "smoke", "--preset", "seed"], "give the config once"),
    ("train-bad-device", ["train", "smoke", "--device", "tpu", "--out", "run"], "tpu"),
    # export
    ("export-out-file", ["export", "--out", "afile.txt", "--weights", "{ck}"], "is a file"),
    ("export-out-foreign-folder", ["export", "--out", "adir", "--weights", "{ck}"], "holds other files"),
    ("export-out-is-weights", ["export", "--out", "{ck}", "--weights", "{ck}"], "input"),
    ("export-tolerance-nan", ["export", "--out", "x", "--weights", "{ck}", "--tolerance", "nan"], "--tolerance"),
    ("export-tolerance-negative", ["export", "--out", "x", "--weights", "{ck}", "--tolerance", "-1"], "--tolerance"),
    ("export-classical", ["export", "--out", "x", "--method", "sift"], "only the neural matchers"),
    ("export-missing-weights", ["export", "--out", "x", "--weights", "missing.safetensors"], "not found"),
    ("export-text-weights", ["export", "--out", "x", "--weights", "afile.txt"], "afile.txt"),
    ("export-huge-config", ["export", "--out", "x", "--weights", "{huge}", "--no-check"], "width"),
    ("export-misfit", ["export", "--out", "x", "--weights", "{misfit}", "--no-check"], "does not fit"),
    ("export-wrong-method", ["export", "--out", "x", "--weights", "{ck}", "--method", "dual-unet"], "neural-seg"),
    # demo
    ("demo-out-file", ["demo", "--out", "afile.txt"], "is a file"),
    ("demo-out-under-file", ["demo", "--out", "afile.txt/demo"], "is a file, not a folder"),
    ("demo-cases-0", ["demo", "--cases", "0", "--out", "d"], None),
    ("demo-bad-method", ["demo", "--methods", "bogus", "--out", "d"], "bogus"),
    ("demo-bad-protocol", ["demo", "--methods", "ncc", "--protocols", "bogus", "--out", "d"], "bogus"),
    # match (the cases that hold today)
    ("match-missing-template", ["match", "missing.png", "img.png"], "missing.png"),
    ("match-text-template", ["match", "afile.txt", "img.png"], "afile.txt"),
    ("match-bad-method", ["match", "tpl.png", "img.png", "--method", "bogus"], "bogus"),
    ("match-bad-roi", ["match", "img.png", "img.png", "--roi", "1,2"], "roi"),
    ("match-out-is-input", ["match", "tpl.png", "img.png", "-m", "ncc", "--out", "img.png"], "destroy"),
    ("match-json-is-template", ["match", "tpl.png", "img.png", "-m", "ncc", "--json", "tpl.png"], "destroy"),
    ("match-json-into-folder", ["match", "tpl.png", "img.png", "-m", "ncc", "--json", "adir"], "is a folder"),
    ("match-save-into-folder", ["match", "tpl.png", "img.png", "-m", "ncc", "--save", "adir"], "is a folder"),
    ("match-min-score-nan", ["match", "tpl.png", "img.png", "-m", "ncc", "--all", "--min-score", "nan"],
     "finite"),
    ("match-out-unknown-suffix", ["match", "tpl.png", "img.png", "-m", "ncc", "--out", "o.xyz"], "suffix"),
    ("match-wrong-network", ["match", "tpl.png", "img.png", "--weights", "{ck}", "--method", "dual-unet"],
     "--method neural-seg"),
    ("match-network-as-presence", ["match", "tpl.png", "img.png", "--weights", "{ck}", "--method", "neural"],
     "--method neural-seg"),
    ("match-presence-as-network", ["match", "tpl.png", "img.png", "--weights", "{presence}", "--method",
                                   "neural-seg"], "neural"),
    ("match-huge-config", ["match", "tpl.png", "img.png", "--weights", "{huge}"], "width"),
    ("match-misfit", ["match", "tpl.png", "img.png", "--weights", "{misfit}"], "does not fit"),
]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The weights files the table refers to (written once)."""
    from safetensors.numpy import load_file, save_file

    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint
    from tmatch.models.presence import PresenceHead

    d = tmp_path_factory.mktemp("weights")
    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, width=16, pretrained=False)
    ck = save_checkpoint(d / "ck.safetensors", build_model(cfg, pretrained=False), cfg)
    from safetensors import safe_open

    with safe_open(str(ck), framework="numpy") as f:
        md = dict(f.metadata())
    tensors = load_file(str(ck))
    huge = dict(md, tmatch_config=json.dumps({**cfg.to_dict(), "width": 200000}))
    save_file(tensors, str(d / "huge.safetensors"), metadata=huge)
    misfit = dict(md, tmatch_config=json.dumps({**cfg.to_dict(), "width": 24}))
    save_file(tensors, str(d / "misfit.safetensors"), metadata=misfit)
    presence = PresenceHead.untrained().save(d / "presence.safetensors")
    return {"ck": str(ck), "huge": str(d / "huge.safetensors"), "misfit": str(d / "misfit.safetensors"),
            "presence": str(presence)}


@pytest.fixture()
def workspace(tmp_path, monkeypatch, astronaut):
    img = cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    cv2.imwrite(str(tmp_path / "tpl.png"), img[100:220, 150:300])
    (tmp_path / "afile.txt").write_text("not an image\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "a.txt").write_text("keep me\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def listing(root: Path) -> dict[str, int]:
    """Every path under ``root`` (the cache excepted) with its size (-1 for folders)."""
    return {p.relative_to(root).as_posix(): (-1 if p.is_dir() else p.stat().st_size)
            for p in root.rglob("*") if not p.relative_to(root).as_posix().startswith("cache")}


@pytest.mark.parametrize("args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_invocation(run, workspace, weights, args, expected):
    before = listing(workspace)
    res = run(*[a.format(**weights) for a in args])
    assert res.exit_code == 2, (res.exit_code, res.output, res.stderr)
    assert "Traceback" not in res.stderr + res.output
    if expected is None:  # typer's own usage error: a box, exit 2
        assert "Usage:" in res.stderr or "Invalid value" in res.stderr, res.stderr
    else:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
        assert expected.lower() in lines[0].lower(), lines[0]
    assert listing(workspace) == before, "files were left behind"


def test_the_table_is_long_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


def test_a_hostile_invocation_through_the_real_script(workspace):
    """The installed entry point (not only the function) gives exit 2 and one line."""
    r = subprocess.run([sys.executable, "-m", "tmatch", "data", "show", "--out", "adir"],
                       capture_output=True, text=True, cwd=workspace, timeout=120,
                       env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "is a folder" in r.stderr
