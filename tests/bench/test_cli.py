"""``tmatch bench``: the verb, its subcommands, and one-line errors with exit code 2."""

from __future__ import annotations

import sys

import pytest

from tmatch.cli.main import main


def cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["tmatch", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_bench_show_report_and_merge(monkeypatch, capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli(monkeypatch, capsys, "bench", "--methods", "ncc,sift", "--protocols", "seed",
                         "--limit", "2", "--out", str(run), "--no-progress", "--gallery", "1",
                         "--text-masks")
    assert code in (0, None), err
    assert "iou_ncc" in out and "4 computed" in out
    assert (run / "report.md").exists() and (run / "masks" / "sift.txt").exists()
    code, out, _ = cli(monkeypatch, capsys, "bench", "show", str(run), "seed-000001")
    assert code in (0, None) and out.startswith("ncc: iou=") and (run / "show" / "seed-000001.png").exists()
    code, out, _ = cli(monkeypatch, capsys, "bench", "report", str(run), "--compare", "sift,ncc")
    assert code in (0, None) and "## sift vs ncc" in out
    code, out, _ = cli(monkeypatch, capsys, "bench", "merge", str(run), "--out", str(tmp_path / "m"))
    assert code in (0, None) and "# Benchmark: m" in out


@pytest.mark.parametrize("args, message", [
    (["--methods", "sift,bogus"], "unknown matcher 'bogus'"),
    (["--data", "/no/such/dir"], "data folder not found"),
    (["--shard", "5/2"], "--shard"),
    (["--shard", "x"], "--shard"),
    (["--protocols", "warp,twirl"], "unknown protocol"),
    (["--coco", "/no/such.json"], "annotation file not found"),
    (["--images", "/usr/share"], "goes with --coco"),
    (["--compare", "sift"], "two methods"),
    (["--weights-for", "sift"], "METHOD=PATH"),
    (["--weights-for", "dual-unet=/no/such.safetensors"], "weights file not found"),
    (["--methods", "sift", "--weights-for", f"neural={__file__}"], "not among the methods"),
])
def test_bad_input_is_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path, args, message):
    code, _, err = cli(monkeypatch, capsys, "bench", "--out", str(tmp_path / "r"), "--limit", "1", *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and message in err


def test_show_of_a_missing_run_is_an_error(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, "bench", "show", str(tmp_path / "none"), "seed-000000")
    assert code == 2 and "run folder not found" in err


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_weights_for_gives_one_method_its_own_weights(monkeypatch, capsys, tmp_path):
    """Two neural matchers in one run, each with its own file: `neural` its presence head,
    `neural-seg` an (untrained) network checkpoint. A single --weights could not serve both."""
    from tmatch.models.weights import shipped_weights
    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint

    monkeypatch.setenv("TMATCH_CACHE", str(tmp_path / "cache"))
    cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
    seg = save_checkpoint(tmp_path / "seg.safetensors", build_model(cfg).eval(), cfg)
    code, out, err = cli(monkeypatch, capsys, "bench", "--methods", "neural,neural-seg", "--protocols", "seed",
                         "--limit", "1", "--out", str(tmp_path / "run"), "--no-progress", "--gallery", "0",
                         "--threads", "1", "--weights-for", f"neural-seg={seg}",
                         "--weights-for", f"neural={shipped_weights('neural')}")
    assert code in (0, None), err
    assert "iou_neural" in out and "iou_neural-seg" in out and "2 computed" in out
