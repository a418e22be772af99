"""Pairs to train and benchmark matchers: sources, protocols, splits, config, the sample set.

>>> from tmatch.data import open_source, make_pair, split
>>> src = open_source(None)                      # the embedded sample set (offline)
>>> pair = make_pair(src, 0, "warp", seed=0)     # the benchmark protocol
>>> pair.present, pair.polygon.shape, pair.mask.shape == pair.image.shape[:2]
(True, (4, 2), True)
"""

from tmatch.data.coco import CocoSource
from tmatch.data.config import DataConfig
from tmatch.data.cutouts import CutoutSource
from tmatch.data.folder import FolderSource
from tmatch.data.pairs import Pair, PairMeta, PairSource, Skips
from tmatch.data.protocols import (
    PROTOCOLS,
    Chain,
    Homography,
    Negatives,
    Perspective,
    Photometric,
    Rotate,
    Screen,
    Seed,
    View,
    ZoomIn,
    ZoomOut,
    make_pair,
    resolve,
    split,
    warp_mask,
)
from tmatch.data.samples import sample_dir, write_samples
from tmatch.data.screens import ScreenSource, write_screens
from tmatch.data.sources import open_source

__all__ = [
    "PROTOCOLS",
    "Chain",
    "CocoSource",
    "CutoutSource",
    "DataConfig",
    "FolderSource",
    "Homography",
    "Negatives",
    "Pair",
    "PairMeta",
    "PairSource",
    "Perspective",
    "Photometric",
    "Rotate",
    "Screen",
    "ScreenSource",
    "Seed",
    "Skips",
    "View",
    "ZoomIn",
    "ZoomOut",
    "make_pair",
    "open_source",
    "resolve",
    "sample_dir",
    "split",
    "warp_mask",
    "write_samples",
    "write_screens",
]
