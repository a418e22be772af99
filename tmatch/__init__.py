"""tmatch — template matching with deep learning and classical methods.

>>> import tmatch, numpy as np
>>> img = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
>>> tmatch.load_matcher("ncc").match(img[20:50, 30:70], img).box
(30, 20, 40, 30)
"""

from tmatch.errors import CheckpointError, DataError, InputError, TmatchError
from tmatch.io import read_image
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.registry import MATCHERS, describe_matchers, list_matchers, load_matcher

__version__ = "0.1.0"

__all__ = [
    "MATCHERS",
    "CheckpointError",
    "DataError",
    "InputError",
    "Match",
    "Matcher",
    "TmatchError",
    "__version__",
    "describe_matchers",
    "list_matchers",
    "load_matcher",
    "read_image",
]
