"""One table of trainers, named after the matchers they train (issue 23 item 15)."""

from __future__ import annotations

import inspect

import pytest

from tmatch.errors import TmatchError
from tmatch.registry import MATCHERS, matcher_class
from tmatch.train.trainers import TRAINERS, trainer_for


def test_every_trainer_names_a_registered_matcher_and_a_function_that_exists():
    for name, t in TRAINERS.items():
        assert name in MATCHERS and t.matcher == name
        run = t.load()
        params = inspect.signature(run).parameters
        assert {"overwrite", "echo"} <= set(params), t.entry
        assert ("resume" in params) == t.resumable, t.entry


def test_every_matcher_that_loads_trained_weights_has_a_trainer():
    """A matcher whose weights come from `tmatch train` (an option `weights`) but that nothing
    trains would be a dead end for users; the classic ones (sift, ncc...) take no weights."""
    weighted = {n for n in MATCHERS
                if n != "hybrid" and "weights" in matcher_class(n).option_table()}
    assert weighted <= set(TRAINERS), weighted - set(TRAINERS)


def test_trainer_modules_are_named_after_their_matchers():
    for name, t in TRAINERS.items():
        module = t.entry.split(":")[0].rsplit(".", 1)[-1]
        assert module == name.replace("-", "_") or module == "loop", t.entry


def test_an_untrainable_matcher_is_one_clear_error():
    with pytest.raises(TmatchError, match="no trainer for matcher 'sift'; trainable: dual-unet"):
        trainer_for("sift")
