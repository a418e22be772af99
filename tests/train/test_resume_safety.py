"""A run killed while saving stays resumable: weights and state are saved as one pair that
appears only when complete, and resume takes the newest consistent pair."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.train.conftest import tiny
from tmatch.errors import CheckpointError, TmatchError
from tmatch.train.loop import LAST, RESUME_DIR, STATE_FILE, load_state, resume_pairs, train


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same smoke run stopped after one epoch and after two epochs."""
    root = tmp_path_factory.mktemp("resume")
    one = train(tiny(root / "one", epochs=1)).out_dir
    two = train(tiny(root / "two", epochs=2)).out_dir
    return one, two


def test_a_pair_per_epoch_and_only_the_newest_is_kept(two_runs):
    _, two = two_runs
    assert [p.name for p in resume_pairs(two)] == ["epoch-0001"]
    assert load_state(two / STATE_FILE)["epoch"] == 1
    assert (two / RESUME_DIR / "epoch-0001" / LAST).samefile(two / LAST)


def test_kill_between_weights_and_state_still_resumes(two_runs, tmp_path):
    """The fuzzed failure: last.safetensors of epoch 2 already in place, state.pt still of
    epoch 1 (the old save order, killed in between); resume used to refuse ("disagree")."""
    one, two = two_runs
    out = tmp_path / "run"
    shutil.copytree(one, out)
    os.unlink(out / LAST)
    shutil.copyfile(two / LAST, out / LAST)  # the newer weights, the older state
    result = train(tiny(out, epochs=2), resume=True)
    assert [r.epoch for r in result.records] == [0, 1]
    assert load_state(out / STATE_FILE)["epoch"] == 1


def test_a_half_written_pair_is_ignored_and_removed(two_runs, tmp_path):
    """A kill while the pair folder was being built leaves a hidden staging folder; resume
    takes the complete pair and the next save removes the leftover."""
    one, _ = two_runs
    out = tmp_path / "run"
    shutil.copytree(one, out)
    stale = out / RESUME_DIR / ".epoch-0001.999999999.abc.tmp"
    stale.mkdir()
    shutil.copyfile(one / LAST, stale / LAST)  # weights written, state not yet
    lines: list[str] = []
    train(tiny(out, epochs=2), resume=True, echo=lines.append)
    assert lines and lines[0].startswith("epoch 2/2")
    assert not stale.exists()
    assert [p.name for p in resume_pairs(out)] == ["epoch-0001"]


def test_an_unusable_newest_pair_falls_back_to_the_previous_one(two_runs, tmp_path):
    one, _ = two_runs
    out = tmp_path / "run"
    shutil.copytree(one, out)
    bad = out / RESUME_DIR / "epoch-0007"
    bad.mkdir()
    (bad / LAST).write_bytes(b"torn")
    (bad / STATE_FILE).write_bytes(b"torn")
    lines: list[str] = []
    train(tiny(out, epochs=2), resume=True, echo=lines.append)
    assert any("skipped a newer unusable one" in ln for ln in lines)


def test_resume_and_overwrite_contradict(two_runs):
    one, _ = two_runs
    with pytest.raises(TmatchError, match="contradict"):
        train(tiny(one, epochs=2), resume=True, overwrite=True)


def test_overwrite_drops_the_old_runs_state(two_runs, tmp_path, monkeypatch):
    """With --overwrite the old run's pairs go before anything else, so a kill before the new
    run's first save cannot resume the old run."""
    _, two = two_runs
    out = tmp_path / "run"
    shutil.copytree(two, out)
    from tmatch.train import loop

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Trainer, "train_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(out, epochs=2), overwrite=True)
    assert resume_pairs(out) == [] and not (out / STATE_FILE).exists()
    with pytest.raises(TmatchError, match="nothing to resume"):
        train(tiny(out, epochs=2), resume=True)


def test_nothing_usable_names_the_cure(tmp_path, two_runs):
    one, _ = two_runs
    out = tmp_path / "run"
    shutil.copytree(one, out)
    for p in [*resume_pairs(out), out]:
        (p / STATE_FILE).unlink()
        (p / STATE_FILE).write_bytes(b"x")
    with pytest.raises(CheckpointError, match="--overwrite"):
        train(tiny(out, epochs=2), resume=True)
