"""The ``neural`` matcher, one file per stage: ``render.py`` (template variants and image
features), ``coarse.py`` (correlation over scales and rotations), ``refine.py`` (refinement and
verification); ``matcher.py`` composes them. Its learned presence head lives in
:mod:`tmatch.models.presence`.
"""

from tmatch.matchers.neural.matcher import NeuralMatcher

__all__ = ["NeuralMatcher"]
