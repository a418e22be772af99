"""Thread counts of the compute libraries, set for a block and restored after it.

:func:`limit_threads` sets OpenCV and (when imported) torch; :func:`torch_threads` torch only.
Nothing here runs at import: tmatch changes no global setting and leaves none changed.
OpenCV is always set; torch only when it is already imported (so that a light install, or a
matcher that never needs torch, does not pay for importing it).

>>> import cv2
>>> before = cv2.getNumThreads()
>>> with limit_threads(1):
...     cv2.getNumThreads()
1
>>> cv2.getNumThreads() == before
True
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` threads in OpenCV (and torch, when imported); ``None`` or 0
    leaves every setting alone."""
    if not n:
        yield
        return
    import cv2

    n = int(n)
    saved_cv2 = cv2.getNumThreads()
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    cv2.setNumThreads(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(saved_cv2)
        if torch is not None and saved_torch is not None:
            torch.set_num_threads(saved_torch)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous count after
    (``None`` or 0: leave torch's setting alone). Imports torch."""
    if not n:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
