"""Exceptions raised by tmatch.

Every error a user can cause (a missing file, a corrupt image, a template larger than the
image, a broken checkpoint...) is a :class:`TmatchError`. The CLI turns it into a one-line
message and exit code 2; library users can catch it, or ``ValueError`` for input problems.
"""

from __future__ import annotations


class TmatchError(Exception):
    """Base class of the errors tmatch raises on purpose, with a message meant for people."""


class InputError(TmatchError, ValueError):
    """Bad input: unreadable or empty image, NaN pixels, template larger than image, bad ROI."""


class CheckpointError(TmatchError, ValueError):
    """A weights file that is missing, corrupt, or does not fit the requested model."""


class OutputError(TmatchError, OSError):
    """An output that cannot be written (a full disk, a device that refuses the bytes)."""


class DataError(TmatchError, ValueError):
    """A dataset that cannot be used at all (empty, missing annotation file...)."""
