"""Which trainer trains which matcher: one table, looked up by ``tmatch train``.

Each trainable matcher has one entry: the function that trains it from a :class:`TrainConfig`
(``tmatch train CONFIG``, whose ``model.arch`` names the matcher), what it trains, and whether
it can resume a run and run under ``torchrun``. The ``neural`` matcher's features are trained
by :mod:`tmatch.train.neural_features`, a separate fine-tuning run with its own command
(``python -m tmatch.train.neural_features``), before its presence head.

>>> sorted(TRAINERS)
['dual-unet', 'neural', 'neural-local', 'neural-seg']
>>> TRAINERS["neural"].what
'presence head'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Trainer:
    """How one matcher is trained.

    Attributes:
        matcher: the registry name (``model.arch`` of the config).
        entry: ``"module:function"``; the function takes ``(config, *, overwrite, echo)`` and,
            when ``resumable``, ``resume``.
        what: what the run trains, for the messages.
        resumable: a stopped run can go on (``tmatch train --resume``).
        distributed: the run can be spread over processes (``torchrun``).
    """

    matcher: str
    entry: str
    what: str
    resumable: bool = True
    distributed: bool = False

    def load(self) -> Callable[..., Any]:
        """The training function (imported now: torch comes with it)."""
        module, func = self.entry.split(":")
        return getattr(importlib.import_module(module), func)


TRAINERS: dict[str, Trainer] = {t.matcher: t for t in (
    Trainer("neural", "tmatch.train.neural:train_presence", "presence head", resumable=False),
    Trainer("neural-local", "tmatch.train.neural_local:train_descriptor", "descriptor and presence head"),
    Trainer("neural-seg", "tmatch.train.loop:train", "network", distributed=True),
    Trainer("dual-unet", "tmatch.train.loop:train", "network", distributed=True),
)}


def trainer_for(matcher: str) -> Trainer:
    """The :class:`Trainer` of ``matcher``.

    Raises:
        TmatchError: a matcher nothing here trains (``sift``, ``hybrid``...).
    """
    from tmatch.errors import TmatchError

    if matcher not in TRAINERS:
        raise TmatchError(f"no trainer for matcher {matcher!r}; trainable: {', '.join(sorted(TRAINERS))}")
    return TRAINERS[matcher]
