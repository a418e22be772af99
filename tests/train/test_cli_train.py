"""`tmatch train`: typed options, --show-config, a short run, one-line errors (exit 2)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from tmatch.cli.main import main


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["tmatch", "train", *args])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_config_applies_overrides(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "seed", "--epochs", "5", "--batch-size", "8",
                           "--lr", "0.01", "--data", "cutouts:/objs", "--data", "samples",
                           "--workers", "0", "--device", "cpu", "--show-config")
    assert code == 0
    cfg = yaml.safe_load(out)
    assert (cfg["epochs"], cfg["batch_size"], cfg["optim"]["lr"], cfg["workers"]) == (5, 8, 0.01, 0)
    assert [s["kind"] for s in cfg["data"]["sources"]] == ["cutouts", "samples"]
    assert cfg["model"]["arch"] == "dual-unet"


def test_short_run_then_resume_longer(monkeypatch, capsys, tmp_path):
    out = tmp_path / "run"
    common = ["--out", str(out), "--no-progress", "--threads", "1", "--valid-pairs", "2"]
    code, text, err = run_cli(monkeypatch, capsys, "--preset", "smoke", "--epochs", "1", *common)
    assert code == 0, err
    assert text.startswith("training the neural-seg matcher's network (smoke)")  # says which matcher
    assert "epoch 1/1" in text and "best epoch 1" in text
    code, text, err = run_cli(monkeypatch, capsys, "--resume", "--epochs", "2", *common)
    assert code == 0, err
    assert "epoch 2/2" in text and "epoch 1/" not in text
    logs = json.loads((out / "logs.json").read_text())
    assert [e["epoch"] for e in logs["epochs"]] == [0, 1]


@pytest.mark.parametrize("args, words", [
    (["nosuch"], "unknown preset"),
    ([], "give a preset"),
    (["--resume"], "--resume needs --out"),
    (["smoke", "--input-size", "70", "--show-config"], "input_size"),
])
def test_errors_are_one_line_exit_2(monkeypatch, capsys, args, words):
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert words in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_bad_option_value_exit_2(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "smoke", "--epochs", "0")
    assert code == 2 and "epochs" in err.lower()
