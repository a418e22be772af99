"""Pure geometry: homographies, polygons, masks, IoU and non-maximum suppression.

Convention (shared with :mod:`tmatch.match`): pixel ``(x, y)`` covers ``[x, x+1) × [y, y+1)``.
OpenCV keypoints put pixel centres at integer coordinates; :func:`from_cv_homography`
converts a homography estimated in that convention to ours.

Shape letters: H×W search image, h×w template, N points.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.draw import polygon as _draw_polygon

from tmatch.errors import InputError

_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_HALF_INV = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


def rect_polygon(x: float, y: float, w: float, h: float) -> np.ndarray:
    """Corners TL, TR, BR, BL ``(4, 2)`` of the axis-aligned box ``(x, y, w, h)``.

    >>> rect_polygon(1, 2, 3, 4).tolist()
    [[1.0, 2.0], [4.0, 2.0], [4.0, 6.0], [1.0, 6.0]]
    """
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def from_cv_homography(hm: np.ndarray) -> np.ndarray:
    """Convert a ``(3, 3)`` homography between pixel-centre coordinates (OpenCV) to ours."""
    return _HALF @ np.asarray(hm, np.float64) @ _HALF_INV


def to_cv_homography(hm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`from_cv_homography`."""
    return _HALF_INV @ np.asarray(hm, np.float64) @ _HALF


def project(hm: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(3, 3)`` homography to ``(N, 2)`` points.

    >>> project(np.eye(3), np.array([[1.0, 2.0]])).tolist()
    [[1.0, 2.0]]
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    ph = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(hm, np.float64).T
    w = ph[:, 2:3]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return ph[:, :2] / w


def template_polygon(hm: np.ndarray, template_hw: tuple[int, int]) -> np.ndarray:
    """The template rectangle ``(h, w)`` warped by ``hm``: ``(4, 2)`` corners TL, TR, BR, BL."""
    h, w = template_hw
    return project(hm, rect_polygon(0, 0, w, h))


def polygon_area(polygon: np.ndarray) -> float:
    """Signed-free area of a simple polygon ``(N, 2)`` (shoelace)."""
    p = np.asarray(polygon, np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _signed_area(polygon: np.ndarray) -> float:
    p = np.asarray(polygon, np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0


def is_convex(polygon: np.ndarray) -> bool:
    """Whether the ``(N, 2)`` polygon is convex and not self-intersecting (consistent turns)."""
    p = np.asarray(polygon, np.float64)
    if not np.isfinite(p).all():
        return False
    d = np.roll(p, -1, axis=0) - p
    cross = d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1)
    return bool((cross > 0).all() or (cross < 0).all())


def _segments_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether the segments ``ab`` and ``cd`` cross at a point inside both."""
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return (side(a, b, c) * side(a, b, d) < 0) and (side(c, d, a) * side(c, d, b) < 0)


def is_simple(polygon: np.ndarray) -> bool:
    """Whether the ``(N, 2)`` polygon has finite corners and no two non-adjacent edges cross
    (a bow-tie quad is not simple).

    >>> is_simple(rect_polygon(0, 0, 4, 3)), is_simple(np.array([[0, 0], [4, 3], [4, 0], [0, 3]]))
    (True, False)
    """
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(p) < 3 or not np.isfinite(p).all():
        return False
    n = len(p)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing edge
            if _segments_cross(p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]):
                return False
    return True


#: the template's footprint may be at most this many times smaller or larger (linear scale)
#: than the template before it is called absurd.
SCALE_LIMITS = (1 / 64, 64.0)


def degenerate(polygon: np.ndarray | None, template_hw: tuple[int, int] | None = None,
               image_hw: tuple[int, int] | None = None, convex: bool = True,
               scale_limits: tuple[float, float] = SCALE_LIMITS, min_area: float = 4.0) -> str | None:
    """Why ``polygon`` ``(N, 2)`` cannot be a template's footprint, or ``None`` when it can.

    Checks, in order: finite corners, no self-crossing (a bow tie), an area of at least
    ``min_area`` px² (four corners on one point have none), convexity when ``convex`` (the model is
    a homography of a rectangle), a linear scale against the ``(h, w)`` template within
    ``scale_limits``, a shape not squashed to a sliver (its roundness ``4πA/P²`` at least a
    tenth of the template's), and some overlap with the ``(H, W)`` image.

    >>> degenerate(rect_polygon(10, 10, 20, 20), (20, 20), (100, 100)) is None
    True
    >>> degenerate(np.zeros((4, 2)), (20, 20), (100, 100))
    'zero area'
    >>> degenerate(np.array([[0, 0], [20, 30], [20, 0], [0, 20.]]), (20, 20), (100, 100))
    'self-crossing'
    """
    if polygon is None:
        return "no polygon"
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(p) < 3 or not np.isfinite(p).all():
        return "non-finite corners"
    area = polygon_area(p)
    if area >= min_area and not is_simple(p):
        return "self-crossing"
    if area < min_area:
        return "zero area"
    if convex and not is_convex(p):
        return "non-convex"
    if template_hw is not None:
        h, w = (float(v) for v in template_hw)
        scale = math.sqrt(area / max(1.0, h * w))
        if not scale_limits[0] <= scale <= scale_limits[1]:
            return "absurd scale"
        perimeter = float(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1).sum())
        roundness = 4 * math.pi * area / max(perimeter ** 2, 1e-12)
        template_roundness = 4 * math.pi * h * w / (2 * (h + w)) ** 2
        if roundness < 0.1 * template_roundness:
            return "squashed to a sliver"
    if image_hw is not None:
        H, W = image_hw
        (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
        if not (x1 > 0 and y1 > 0 and x0 < W and y0 < H):
            return "outside the image"
    return None


def plausible_homography(hm: np.ndarray | None, template_hw: tuple[int, int],
                         image_hw: tuple[int, int], min_scale: float = 0.1,
                         max_scale: float = 10.0) -> bool:
    """Reject degenerate homographies: non-finite, twisted or non-convex quads, absurd scale,
    or a polygon entirely outside the image."""
    if hm is None or not np.isfinite(hm).all():
        return False
    h, w = template_hw
    corners = rect_polygon(0, 0, w, h)
    depth = np.concatenate([corners, np.ones((4, 1))], axis=1) @ np.asarray(hm, np.float64)[2]
    if (depth <= 1e-9).any():
        return False  # a corner crosses the horizon: the quad folds over
    poly = project(hm, corners)
    if _signed_area(poly) <= 0:
        return False  # mirrored (a planar object seen from the front is never mirrored)
    return degenerate(poly, template_hw, image_hw, convex=True, scale_limits=(min_scale, max_scale)) is None


def scale_homography(hm: np.ndarray, template_scale: float = 1.0, image_scale: float = 1.0) -> np.ndarray:
    """The homography between the original template and image, given ``hm`` found between a
    template resized by ``template_scale`` and an image resized by ``image_scale``:
    ``diag(1/image_scale) · hm · diag(template_scale)`` (scaling about the origin, which our
    pixel-corner convention makes exact).

    >>> scale_homography(np.eye(3), 0.5, 0.25).diagonal().tolist()
    [2.0, 2.0, 1.0]
    """
    left = np.diag([1.0 / image_scale, 1.0 / image_scale, 1.0])
    right = np.diag([template_scale, template_scale, 1.0])
    return left @ np.asarray(hm, np.float64) @ right


def mask_from_polygon(polygon: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon ``(N, 2)``: a pixel is inside when its centre is.

    Convex polygons (every template footprint) take a fast path of half-plane tests over the
    polygon's box; others go through scikit-image's scanline fill.

    >>> int(mask_from_polygon(rect_polygon(2, 3, 5, 6), (20, 20)).sum())
    30
    """
    H, W = int(image_hw[0]), int(image_hw[1])
    mask = np.zeros((H, W), dtype=bool)
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(p) < 3 or not np.isfinite(p).all():
        return mask
    if is_convex(p):
        x0, y0 = np.clip(np.floor(p.min(axis=0)).astype(int), 0, [W, H])
        x1, y1 = np.clip(np.ceil(p.max(axis=0)).astype(int), 0, [W, H])
        if x1 <= x0 or y1 <= y0:
            return mask
        px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
        sign = 1.0 if _signed_area(p) > 0 else -1.0
        inside = np.ones((y1 - y0, x1 - x0), bool)
        for k in range(len(p)):
            (ax, ay), (bx, by) = p[k], p[(k + 1) % len(p)]
            inside &= sign * ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) >= 0
        mask[y0:y1, x0:x1] = inside
        return mask
    # Pixel centres sit at integer coordinates after shifting by -0.5.
    p = np.clip(p - 0.5, -1e6, 1e6)
    rr, cc = _draw_polygon(p[:, 1], p[:, 0], shape=(H, W))
    mask[rr, cc] = True
    return mask


def box_from_polygon(polygon: np.ndarray, image_hw: tuple[int, int] | None = None
                     ) -> tuple[int, int, int, int]:
    """Integer ``(x, y, w, h)`` box of the pixels whose centres lie within the polygon's extent,
    clipped to the image when given.

    >>> box_from_polygon(rect_polygon(2, 3, 5, 6))
    (2, 3, 5, 6)
    """
    p = np.asarray(polygon, np.float64)
    x0, y0 = np.ceil(p.min(axis=0) - 0.5)
    x1, y1 = np.floor(p.max(axis=0) - 0.5) + 1
    if image_hw is not None:
        H, W = image_hw
        x0, x1 = np.clip([x0, x1], 0, W)
        y0, y1 = np.clip([y0, y1], 0, H)
    return int(x0), int(y0), int(max(0, x1 - x0)), int(max(0, y1 - y0))


def box_from_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x, y, w, h)`` of the True pixels of an ``(H, W)`` mask, or ``None`` when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def polygon_from_mask(mask: np.ndarray) -> np.ndarray | None:
    """Minimum-area rectangle ``(4, 2)`` around the largest blob of a mask, ordered TL, TR, BR, BL
    (by position), or ``None`` for an empty mask."""
    m = np.asarray(mask, np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea)
    rect = cv2.minAreaRect(c.astype(np.float32) + 0.5)
    (cx, cy), (rw, rh), ang = rect
    rect = ((cx, cy), (rw + 1.0, rh + 1.0), ang)  # contour runs through pixel centres
    return order_corners(cv2.boxPoints(rect).astype(np.float64))


def order_corners(points: np.ndarray) -> np.ndarray:
    """Order four points ``(4, 2)`` as TL, TR, BR, BL (clockwise on screen, TL first)."""
    p = np.asarray(points, np.float64).reshape(4, 2)
    c = p.mean(axis=0)
    ang = np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0])
    p = p[np.argsort(ang)]  # clockwise on screen (y down), starting from about -180°
    start = int(np.argmin(p[:, 0] + p[:, 1]))
    return np.roll(p, -start, axis=0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(H, W)`` boolean masks; two empty masks give 1.0.

    >>> import numpy as np
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> iou(a, a), iou(a, ~a)
    (1.0, 0.0)
    """
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    if a.shape != b.shape:
        raise InputError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two ``(x, y, w, h)`` boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def polygon_iou(p: np.ndarray, q: np.ndarray) -> float:
    """IoU of two convex polygons ``(N, 2)``; falls back to box IoU when either is not convex."""
    p = np.asarray(p, np.float32)
    q = np.asarray(q, np.float32)
    if not (is_convex(p) and is_convex(q)):
        return box_iou(box_from_polygon(p), box_from_polygon(q))
    pa, qa = polygon_area(p), polygon_area(q)
    if pa <= 0 or qa <= 0:
        return 0.0
    # OpenCV wants both polygons in the same orientation.
    p = cv2.convexHull(p).reshape(-1, 2)
    q = cv2.convexHull(q).reshape(-1, 2)
    inter, _ = cv2.intersectConvexConvex(p, q)
    inter = max(0.0, float(inter))
    return inter / (pa + qa - inter)


def nms(polygons: list[np.ndarray], scores: list[float], iou_threshold: float = 0.3) -> list[int]:
    """Greedy non-maximum suppression over polygons ``(4, 2)``; returns kept indices, best first.

    >>> nms([rect_polygon(0, 0, 10, 10), rect_polygon(1, 1, 10, 10), rect_polygon(50, 50, 5, 5)],
    ...     [0.9, 0.8, 0.7])
    [0, 2]
    """
    order = list(np.argsort(-np.asarray(scores, np.float64), kind="stable"))
    keep: list[int] = []
    for i in order:
        if all(polygon_iou(polygons[i], polygons[k]) <= iou_threshold for k in keep):
            keep.append(int(i))
    return keep


def random_homography(rng: np.random.Generator, template_hw: tuple[int, int],
                      image_hw: tuple[int, int], scale: tuple[float, float] = (0.7, 1.4),
                      rotation: float = 25.0, perspective: float = 0.0008,
                      center: tuple[float, float] | None = None) -> np.ndarray:
    """A random homography placing a ``(h, w)`` template inside an ``(H, W)`` image.

    Scale and rotation (degrees, ±``rotation``) about the template centre, a perspective
    term of magnitude up to ``perspective`` (in 1/pixels of the template), then a translation
    that keeps the warped template inside the image when it fits (centred otherwise).
    """
    h, w = template_hw
    H, W = image_hw
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    a = np.deg2rad(rng.uniform(-rotation, rotation))
    c, si = np.cos(a), np.sin(a)
    to_origin = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], float)
    rs = np.array([[s * c, -s * si, 0], [s * si, s * c, 0], [0, 0, 1]], float)
    pers = np.eye(3)
    pers[2, :2] = rng.uniform(-perspective, perspective, 2)
    hm = rs @ pers @ to_origin
    poly = project(hm, rect_polygon(0, 0, w, h))
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    if center is not None:
        tx, ty = center
    else:
        span_x = (-lo[0], W - hi[0])
        span_y = (-lo[1], H - hi[1])
        tx = rng.uniform(*span_x) if span_x[0] <= span_x[1] else W / 2 - (lo[0] + hi[0]) / 2
        ty = rng.uniform(*span_y) if span_y[0] <= span_y[1] else H / 2 - (lo[1] + hi[1]) / 2
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], float) @ hm


def warp_image(image: np.ndarray, hm: np.ndarray, out_hw: tuple[int, int],
               border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """Warp an image with a homography in our convention into an ``(H, W)`` canvas."""
    H, W = out_hw
    return cv2.warpPerspective(image, to_cv_homography(hm), (int(W), int(H)),
                               flags=cv2.INTER_LINEAR, borderMode=border)


def _gray_float(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def ecc_align(hm: np.ndarray, template: np.ndarray, image: np.ndarray, side: int = 160,
              min_cc: float = 0.8, iterations: int = 60) -> tuple[np.ndarray | None, float]:
    """Refine the template → image homography ``hm`` by intensity alignment (OpenCV's ECC, a
    full homography, invariant to gain and bias) on the region around it, the template's longer
    side scaled to at most ``side`` px (ECC's cost follows the template's pixels).

    Returns:
        ``(refined homography or None, correlation coefficient)``: ``None`` when ECC does not
        converge, correlates below ``min_cc`` or ends on an implausible homography.
    """
    th, tw = template.shape[:2]
    H, W = image.shape[:2]
    s = min(1.0, side / max(th, tw))
    poly = template_polygon(hm, (th, tw))
    pad = 0.15 * float(np.ptp(poly, axis=0).max()) + 4
    x0, y0 = (int(max(0, np.floor(v - pad))) for v in poly.min(axis=0))
    x1, y1 = int(min(W, np.ceil(poly[:, 0].max() + pad))), int(min(H, np.ceil(poly[:, 1].max() + pad)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, 0.0
    tpl = cv2.resize(template, (max(8, round(tw * s)), max(8, round(th * s))), interpolation=cv2.INTER_AREA) \
        if s < 1 else template
    reg = image[y0:y1, x0:x1]
    if s < 1:
        reg = cv2.resize(reg, (max(8, round((x1 - x0) * s)), max(8, round((y1 - y0) * s))),
                         interpolation=cv2.INTER_AREA)
    sx_t, sy_t = tpl.shape[1] / tw, tpl.shape[0] / th
    sx_r, sy_r = reg.shape[1] / (x1 - x0), reg.shape[0] / (y1 - y0)
    to_tpl = np.diag([sx_t, sy_t, 1.0])  # template edge coords -> scaled template
    to_reg = np.diag([sx_r, sy_r, 1.0]) @ np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]])
    c = to_reg @ hm @ np.linalg.inv(to_tpl)
    warp = to_cv_homography(c / c[2, 2]).astype(np.float32)
    try:
        cc, warp = cv2.findTransformECC(_gray_float(tpl), _gray_float(reg), warp, cv2.MOTION_HOMOGRAPHY,
                                        (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5),
                                        None, 3)
    except cv2.error:
        return None, 0.0
    if not np.isfinite(cc) or cc < min_cc:
        return None, float(cc) if np.isfinite(cc) else 0.0
    out = np.linalg.inv(to_reg) @ from_cv_homography(warp.astype(np.float64)) @ to_tpl
    out = out / out[2, 2]
    if not plausible_homography(out, (th, tw), (H, W)):
        return None, float(cc)
    return out, float(cc)


#: image windows with a smaller grey-level standard deviation correlate with nothing.
FLAT_WINDOW = 0.5


def ncc_map(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Correlation coefficient (``cv2.TM_CCOEFF_NORMED``) of ``template`` at every position of
    ``image`` (grey or colour, float32 or uint8); -1 where it is undefined: NaN, and image
    windows that are flat (standard deviation below :data:`FLAT_WINDOW` in every channel),
    where OpenCV answers 1 — a black band would be a perfect copy of anything.

    >>> img = np.zeros((40, 40), np.float32); img[:, 20:] = np.arange(20)
    >>> r = ncc_map(img, img[5:15, 22:32].copy())
    >>> float(r[0, 0]), round(float(r.max()), 3)
    (-1.0, 1.0)
    """
    r = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    r = np.nan_to_num(r, nan=-1.0, posinf=-1.0, neginf=-1.0)
    th, tw = template.shape[:2]
    s, sq = cv2.integral2(image, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    h, w = r.shape

    def window(a: np.ndarray) -> np.ndarray:
        return a[th:th + h, tw:tw + w] - a[:h, tw:tw + w] - a[th:th + h, :w] + a[:h, :w]

    n = float(th * tw)
    var = window(sq) / n - (window(s) / n) ** 2
    if var.ndim == 3:
        var = var.max(axis=2)
    r[var < FLAT_WINDOW ** 2] = -1.0
    return r



def aligned_ncc(template: np.ndarray, image: np.ndarray, hm: np.ndarray, side: int = 96) -> float:
    """How well the template agrees with the image where ``hm`` puts it: the grey-level
    correlation coefficient between the template and the image warped back into its frame
    (the template's longer side scaled to at most ``side`` px); 0 for a flat template.

    >>> rng = np.random.default_rng(0)
    >>> img = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
    >>> hm = np.array([[1.0, 0, 20], [0, 1, 10], [0, 0, 1]])
    >>> round(aligned_ncc(img[10:40, 20:60], img, hm), 3)
    1.0
    """
    th, tw = template.shape[:2]
    s = min(1.0, side / max(th, tw))
    w, h = max(4, round(tw * s)), max(4, round(th * s))
    S = np.diag([w / tw, h / th, 1.0])
    back = cv2.warpPerspective(image, to_cv_homography(hm @ np.linalg.inv(S)), (w, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    t = template if (w, h) == (tw, th) else cv2.resize(template, (w, h), interpolation=cv2.INTER_AREA)
    a, b = _gray_float(back).ravel(), _gray_float(t).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 0.0
