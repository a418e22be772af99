"""Matchers, one file each: ncc.py, features.py (sift/orb/akaze), neural.py, hybrid.py."""

from tmatch.matchers.base import Matcher

__all__ = ["Matcher"]
