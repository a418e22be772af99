"""Training: configs and presets, the loop (one CPU to many GPUs), losses, distributed helpers.

>>> from tmatch.train import load_config
>>> load_config("seed").model.encoder
'resnet34'

Run from the command line with ``tmatch train PRESET_OR_YAML``; from Python::

    from tmatch.train import apply_overrides, load_config, train
    result = train(apply_overrides(load_config("smoke"), out="runs/smoke"))
"""

from tmatch.train.config import (
                                 DataSection,
                                 LossSection,
                                 OptimSection,
                                 SourceSpec,
                                 TrainConfig,
                                 apply_overrides,
                                 list_presets,
                                 load_config,
                                 save_config,
)
from tmatch.train.loop import EpochRecord, TrainResult, load_state, train

__all__ = [
    "DataSection",
    "EpochRecord",
    "LossSection",
    "OptimSection",
    "SourceSpec",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "list_presets",
    "load_config",
    "load_state",
    "save_config",
    "train",
]
