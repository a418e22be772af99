"""Stage 1 of ``neural-local``: keypoints with a position, a scale and an orientation.

A classical detector (OpenCV's difference-of-Gaussians, the detector half of SIFT) gives each
keypoint a scale and a dominant orientation; the learned descriptor then reads a patch in that
frame, which makes matching invariant to rotation over the full circle and to scale by
construction. Images are worked on at a bounded size (:func:`detect_fitted`: large ones shrunk,
tiny ones enlarged) and the keypoints mapped back to their own pixels.

>>> import numpy as np
>>> kp = detect(np.zeros((64, 64), np.uint8), 100)
>>> kp.points.shape, len(kp)
((0, 2), 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Keypoints:
    """N keypoints of one image, in its own pixel-centre coordinates.

    Attributes:
        points: ``(N, 2)`` x, y.
        sizes: ``(N,)`` the detector's diameter of the keypoint's neighbourhood, pixels.
        angles: ``(N,)`` dominant orientation, degrees (image axes, y down).
        responses: ``(N,)`` detector response (strongest first is the order kept).
    """

    points: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray
    responses: np.ndarray

    def __len__(self) -> int:
        return int(len(self.points))

    def scaled(self, factor: float) -> "Keypoints":
        """The keypoints of an image resized by ``factor`` mapped back to the original
        (``factor`` = resized side / original side)."""
        f = float(factor)
        return Keypoints((self.points + 0.5) / f - 0.5, self.sizes / f, self.angles, self.responses)

    @classmethod
    def empty(cls) -> "Keypoints":
        return cls(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))

    def take(self, index: np.ndarray) -> "Keypoints":
        return Keypoints(self.points[index], self.sizes[index], self.angles[index], self.responses[index])


def gray(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB uint8 → ``(H, W)`` uint8."""
    return rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def detect(image: np.ndarray, max_points: int, contrast: float = 0.03,
           min_size: float = 0.0) -> Keypoints:
    """Up to ``max_points`` strongest difference-of-Gaussians keypoints of a grayscale image.

    Args:
        image: ``(H, W)`` uint8.
        max_points: keypoints kept (strongest responses).
        contrast: the detector's contrast threshold (lower: more keypoints on flat content).
        min_size: keypoints smaller than this diameter (pixels) are dropped. 0 keeps all: the
            smallest ones carry small text (dropping those under 2 px cost 0.05 IoU on our validation
            pages' re-render).
    """
    det = cv2.SIFT_create(nfeatures=int(max_points), contrastThreshold=float(contrast))
    kps = det.detect(image, None)
    if not kps:
        return Keypoints.empty()
    pts = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
    sizes = np.array([k.size for k in kps], np.float64)
    angles = np.array([k.angle for k in kps], np.float64)
    resp = np.array([k.response for k in kps], np.float64)
    keep = np.nonzero(sizes >= min_size)[0]
    order = keep[np.argsort(-resp[keep], kind="stable")][:max_points]
    return Keypoints(pts[order], sizes[order], angles[order], resp[order])


def detect_fitted(image: np.ndarray, max_points: int, max_side: int | None = None,
                  contrast: float = 0.03, min_side: int | None = None) -> tuple[np.ndarray, Keypoints, float]:
    """:func:`detect` on ``image`` resized to a working size: shrunk so its longer side is at
    most ``max_side``, or enlarged (bicubic) so it is at least ``min_side`` — a tiny image has
    too few pixels for keypoints at the scales that matter.

    Returns:
        (the working image, its keypoints, the factor working side / original side); map the
        keypoints to the original with ``Keypoints.scaled(factor)``.
    """
    h, w = image.shape[:2]
    f = 1.0
    if max_side is not None and max(h, w) > max_side:
        f = float(max_side) / max(h, w)
    elif min_side is not None and max(h, w) < min_side:
        f = float(min_side) / max(h, w)
    if f != 1.0:
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    return image, detect(image, max_points, contrast), f
