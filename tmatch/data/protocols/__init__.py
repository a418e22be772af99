"""Protocols: how a seed pair is turned into a training or benchmark pair, with exact truth.

A protocol is a frozen dataclass whose ``__call__(pair, rng, ctx)`` returns a new
:class:`~tmatch.data.pairs.Pair`. Names compose with ``+`` (``"homography+photometric"``), applied
left to right. :func:`make_pair` draws pair ``i`` of protocol ``p`` from a random generator seeded
by ``(seed, p, i)`` only, so runs can be sharded and resumed.

* ``seed`` — the original: exact crop, unchanged image; optionally the original's ±angle rotation
  of the search image (blank corners filled from the unrotated photo) and horizontal flip.
* ``homography`` — the search image warped so the template lands under a random scale,
  rotation, perspective and translation; polygon and mask follow exactly.
* ``photometric`` — brightness, contrast, gamma, colour, blur, noise and JPEG damage of the search
  image (albumentations).
* ``warp`` — the benchmark protocol: ``homography`` (scale 0.7–1.4, rotation ±25°, mild
  perspective) then ``photometric``.
* ``negatives`` — the template replaced by one from another photo: ``present=False``, empty mask.
* ``rotate`` — the template seen at any angle (uniform over the full circle) and a mild scale
  (log-uniform 0.8–1.25).
* ``zoom-out`` — the template is a high-resolution view: it appears at 0.25–0.5× its size
  (log-uniform); in 35% of the cases the search image is also cropped to a window smaller than
  the template on both sides (the template is larger than the whole image).
* ``zoom-in`` — the template appears at 2–4× its size (log-uniform); a template whose footprint
  would not fit the image is cut to a centred part that does.
* ``perspective`` — the planar target seen from a viewpoint tilted 25–40° away from its normal
  (uniform, in a uniform direction), a camera roll of ±30° and a scale of 0.7–1.25 at its
  centre, through a pinhole camera whose focal length is the photo's longer side.
* ``screen`` — (the screens source only) a UI element rendered at one device scale factor, the
  page at another, among 1, 1.25, 1.5, 2 (see :mod:`tmatch.data.screens`).

The geometric protocols draw their parameters with ``draw(rng, ...)`` (a small frozen dataclass,
tested for its ranges) and apply them with ``apply(pair, params)``; ``__call__`` does both.

Shape letters: H×W search image, h×w template.
"""

from tmatch.data.protocols.classic import (
    Chain,
    Context,
    Homography,
    Negatives,
    Photometric,
    Seed,
    sample_placement,
    warp_mask,
)
from tmatch.data.protocols.registry import PROTOCOLS, Protocol, make_pair, resolve, split
from tmatch.data.protocols.views import (
    SCALES,
    Perspective,
    Rotate,
    Screen,
    View,
    ZoomIn,
    ZoomOut,
    viewpoint_homography,
)

__all__ = [
    "PROTOCOLS",
    "SCALES",
    "Chain",
    "Context",
    "Homography",
    "Negatives",
    "Perspective",
    "Photometric",
    "Protocol",
    "Rotate",
    "Screen",
    "Seed",
    "View",
    "ZoomIn",
    "ZoomOut",
    "make_pair",
    "resolve",
    "sample_placement",
    "split",
    "viewpoint_homography",
    "warp_mask",
]
