"""``neural-local``: learned local descriptors (stages: detect, describe, verify, presence)."""

from tmatch.matchers.neural_local.matcher import NeuralLocalMatcher

__all__ = ["NeuralLocalMatcher"]
