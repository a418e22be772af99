"""The training loop on the embedded sample set: learning, outputs, exact resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.train.conftest import tiny
from tmatch.errors import CheckpointError, TmatchError
from tmatch.train.distributed import DistContext
from tmatch.train.loop import LrSchedule, Trainer, load_state, train


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """Three uninterrupted epochs of the smoke preset."""
    out = tmp_path_factory.mktemp("run_a")
    lines: list[str] = []
    result = train(tiny(out, epochs=3), echo=lines.append)
    return result, lines


@pytest.mark.parametrize("arch", ["neural-seg", "dual-unet"])
def test_a_few_steps_lower_the_loss(tmp_path, arch):
    cfg = tiny(tmp_path, arch, optim={"name": "adam", "lr": 1e-3},
               data={"sources": ["samples"], "protocol": "seed", "wrong_query_rate": 0.25,
                     "train_pairs": 4, "valid_pairs": 0})
    trainer = Trainer(cfg, DistContext())
    batch = next(iter(trainer.train_loader))
    assert len(batch) == 4
    losses = [float(trainer.step(batch)[1].total) for _ in range(5)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.95 * losses[0], losses
    assert trainer.global_step == 5


def test_outputs_of_a_run(run_a):
    result, lines = run_a
    out = result.out_dir
    for name in ("config.yaml", "logs.json", "loss_iou.png", "last.safetensors",
                 "last.safetensors.json", "best.safetensors", "state.pt",
                 "predictions/epoch_1.png", "predictions/epoch_3.png"):
        assert (out / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    logs = json.loads((out / "logs.json").read_text())
    assert [e["epoch"] for e in logs["epochs"]] == [0, 1, 2]
    e0 = logs["epochs"][0]
    assert {"loss", "iou", "dice", "bce", "presence"} <= set(e0["train"])
    assert {"loss", "iou", "success", "iou_pooled", "presence_acc"} <= set(e0["valid"])
    assert len(e0["step_loss"]) == e0["steps"] == 2 and e0["pairs_per_s"] > 0
    # Learning on the training pairs: the epoch loss goes down.
    assert logs["epochs"][-1]["train"]["loss"] < logs["epochs"][0]["train"]["loss"]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3")
    # Weights load back through the public checkpoint API, with the recipe as metadata.
    from tmatch.models.checkpoint import load_checkpoint

    _, cfg, meta = load_checkpoint(out / "last.safetensors")
    assert cfg.arch == "neural-seg" and meta["epoch"] == 2 and meta["kind"] == "last"
    assert meta["recipe"]["optim"]["name"] == "adamw" and meta["data"]["protocol"]
    _, _, bmeta = load_checkpoint(result.best)
    assert bmeta["epoch"] == result.best_epoch
    st = load_state(out / "state.pt")
    assert st["epoch"] == 2 and st["global_step"] == 6 and "optimizer" in st
    png = (out / "predictions" / "epoch_3.png").read_bytes()
    assert png[:4] == b"\x89PNG"


def test_resume_reproduces_the_uninterrupted_run(run_a, tmp_path):
    """Stop after epoch 2 (as a killed job would), resume: epoch 3 is the same, step by step."""
    result_a, _ = run_a

    class Killed(Exception):
        pass

    def kill_after_epoch_2(line: str) -> None:
        if line.startswith("epoch 2/"):
            raise Killed

    cfg = tiny(tmp_path / "b", epochs=3)
    with pytest.raises(Killed):
        train(cfg, echo=kill_after_epoch_2)
    assert load_state(tmp_path / "b" / "state.pt")["epoch"] == 1
    result_b = train(cfg, resume=True)
    a, b = result_a.records, result_b.records
    assert [r.epoch for r in b] == [0, 1, 2]
    assert b[2].step_loss == a[2].step_loss  # the next steps' losses, exactly
    assert b[2].valid == a[2].valid
    from safetensors.torch import load_file

    wa = load_file(str(result_a.last))
    wb = load_file(str(result_b.last))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_refuses_to_clobber_or_resume_nothing(run_a, tmp_path):
    result, _ = run_a
    cfg = tiny(result.out_dir, epochs=3)
    with pytest.raises(TmatchError, match="already holds a run"):
        train(cfg)
    with pytest.raises(TmatchError, match="nothing to resume"):
        train(tiny(tmp_path / "empty"), resume=True)


def test_resume_checks_the_state_files(tmp_path):
    out = tmp_path / "r"
    train(tiny(out, epochs=1))
    (out / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read training state"):
        train(tiny(out, epochs=2), resume=True)


def test_lr_schedules():
    step = LrSchedule("step", steps_per_epoch=4, total_steps=40, milestones=[2, 5], gamma=0.1)
    assert [step(s) for s in (0, 7, 8, 19, 20)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cos = LrSchedule("cosine", steps_per_epoch=10, total_steps=100, warmup_steps=10, min_ratio=0.01)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(99) == pytest.approx(0.01, abs=1e-3) and cos(50) < cos(20)
    assert LrSchedule("constant", 10, 100)(57) == 1.0
