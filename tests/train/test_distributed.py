"""Sharding of pair slots, and a real two-process DDP run (gloo on CPU) through torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tmatch.errors import TmatchError
from tmatch.train.distributed import SlotSampler, env_ranks, pick_device, setup, shard


@pytest.mark.parametrize("n, world", [(10, 1), (10, 2), (10, 3), (7, 4), (3, 4)])
def test_shards_cover_every_slot(n, world):
    exact = [shard(n, r, world, pad=False) for r in range(world)]
    assert sorted(s for sh in exact for s in sh) == list(range(n))  # disjoint, complete
    padded = [shard(n, r, world) for r in range(world)]
    assert len({len(p) for p in padded}) == 1  # equal steps on every rank
    assert {s for p in padded for s in p} == set(range(n))


def test_slot_sampler_keys_carry_the_epoch():
    s = SlotSampler(5, rank=1, world_size=2)
    s.set_epoch(3)
    assert list(s) == [(3, 1), (3, 3), (3, 0)] and len(s) == 3
    v = SlotSampler(5, rank=1, world_size=2, pad=False, fixed_epoch=0)
    v.set_epoch(3)
    assert list(v) == [(0, 1), (0, 3)]


def test_env_ranks_and_single_process_setup(monkeypatch):
    assert env_ranks({}) == (0, 0, 1)
    assert env_ranks({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == (3, 1, 4)
    with pytest.raises(TmatchError):
        env_ranks({"RANK": "4", "WORLD_SIZE": "4"})
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    ctx = setup("cpu")
    assert ctx.world_size == 1 and ctx.is_main and not ctx.distributed and ctx.backend is None
    assert pick_device("cpu").type == "cpu"


@pytest.mark.slow  # several seconds: subprocesses or training steps
def test_ddp_two_cpu_processes_with_torchrun(tmp_path):
    """`torchrun --nproc_per_node 2 -m tmatch train smoke`: gloo, sharded pairs, rank 0 writes."""
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tmatch", "train", "smoke", "--out", str(out), "--no-progress", "--device", "cpu",
           "--epochs", "2", "--train-pairs", "16", "--batch-size", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    logs = json.loads((out / "logs.json").read_text())
    assert logs["world_size"] == 2
    assert logs["steps_per_epoch"] == 2  # 16 pairs / (2 processes x batch 4)
    assert [e["train"]["pairs"] for e in logs["epochs"]] == [16, 16]  # summed over both ranks
    assert (out / "last.safetensors").is_file() and (out / "state.pt").is_file()
    assert len(list((out / "tb").iterdir())) == 1  # one writer: rank 0 only
    assert r.stdout.count("epoch 2/2") == 1  # only rank 0 reports
