"""Matchers, a file or folder each: ncc.py, features.py (sift/orb/akaze), hybrid.py, copies.py
(exact copies, used by hybrid), networks.py (neural-seg, dual-unet), neural/ and neural_local/;
base.py and options.py hold what they share."""

from tmatch.matchers.base import Matcher

__all__ = ["Matcher"]
