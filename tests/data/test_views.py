"""The view protocols (rotate, zoom-out, zoom-in, perspective): their parameter ranges over many
seeds, determinism, and exact truth (corner markers, pixels pulled back, a viewpoint recovered
from the homography)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tmatch import geometry
from tmatch.data import PROTOCOLS, Perspective, Rotate, ZoomIn, ZoomOut, make_pair
from tmatch.data.pairs import PairMeta, PairSource, crop_pair
from tmatch.data.protocols import viewpoint_homography
from tmatch.errors import DataError, InputError
from tmatch.matchers.ncc import NCCMatcher

VIEWS = ("rotate", "zoom-out", "zoom-in", "perspective")
MARKERS = np.array([[230, 20, 20], [20, 200, 20], [20, 40, 230], [240, 220, 10]], np.uint8)


class MarkerSource(PairSource):
    """Two textured photos, each with a template whose four corners carry coloured squares
    (TL red, TR green, BR blue, BL yellow): where the truth puts a corner, its colour must be."""

    name = "markers"
    BOX = (220, 150, 160, 120)
    SQUARE = 32

    def __init__(self):
        super().__init__(max_side=0)
        self.photos = []
        for k in range(2):
            rng = np.random.default_rng(k)
            noise = rng.integers(60, 200, (60, 80, 3)).astype(np.uint8)
            img = cv2.resize(noise, (640, 480), interpolation=cv2.INTER_CUBIC)
            x, y, w, h = self.BOX
            s = self.SQUARE
            for (cx, cy), c in zip([(x, y), (x + w - s, y), (x + w - s, y + h - s), (x, y + h - s)],
                                   MARKERS):
                img[cy:cy + s, cx:cx + s] = c
            self.photos.append(img)

    def __len__(self):
        return 2

    def image_key(self, i):
        return f"photo{i}"

    def base(self, i):
        meta = PairMeta("markers", i, f"photo{i}", None, "", self.BOX)
        return crop_pair(self.photos[i], self.BOX, meta)


def linear_part(pair) -> np.ndarray:
    """The 2×2 linear part of an affine template → image homography."""
    hm = pair.homography / pair.homography[2, 2]
    assert np.allclose(hm[2, :2], 0, atol=1e-12)
    return hm[:2, :2]


# -- drawn parameters: ranges and distributions ------------------------------------------------
def test_feature_rotate_draws_any_angle_and_a_mild_scale():
    rng = np.random.default_rng(0)
    views = [Rotate().draw(rng) for _ in range(4000)]
    angles = np.array([v.angle for v in views])
    scales = np.array([v.scale for v in views])
    assert angles.min() >= -180 and angles.max() < 180
    counts = np.histogram(angles, bins=8, range=(-180, 180))[0]
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500  # uniform over the circle
    assert scales.min() >= 0.8 and scales.max() <= 1.25
    assert abs(np.log(scales).mean() - np.log(np.sqrt(0.8 * 1.25))) < 0.01  # log-uniform
    assert scales.min() < 0.81 and scales.max() > 1.24


def test_feature_zoom_draws_their_scale_ranges():
    rng = np.random.default_rng(1)
    out = np.array([ZoomOut().draw(rng).scale for _ in range(3000)])
    inn = np.array([ZoomIn().draw(rng).scale for _ in range(3000)])
    assert 0.25 <= out.min() < 0.26 and 0.49 < out.max() <= 0.5
    assert 2.0 <= inn.min() < 2.05 and 3.95 < inn.max() <= 4.0
    assert abs(np.log(out).mean() - np.log(np.sqrt(0.125))) < 0.01
    assert abs(np.log(inn).mean() - np.log(np.sqrt(8.0))) < 0.01
    larger = np.mean([ZoomOut().draw(rng).larger for _ in range(3000)])
    assert abs(larger - 0.35) < 0.03


def test_feature_perspective_draws_a_25_to_40_degree_viewpoint_and_moderate_roll():
    rng = np.random.default_rng(2)
    views = [Perspective().draw(rng) for _ in range(3000)]
    tilt = np.array([v.tilt for v in views])
    roll = np.array([v.angle for v in views])
    tdir = np.array([v.tilt_dir for v in views])
    assert 25 <= tilt.min() < 25.5 and 39.5 < tilt.max() <= 40
    assert -30 <= roll.min() < -29 and 29 < roll.max() <= 30
    assert np.histogram(tdir, bins=4, range=(0, 360))[0].min() > 0.8 * 750
    assert all(0.7 <= v.scale <= 1.25 for v in views)


def test_exception_bad_ranges_are_refused():
    with pytest.raises(DataError, match="scale range"):
        Rotate(scale=(1.2, 0.8))
    with pytest.raises(DataError, match="at most 1"):
        ZoomOut(scale=(0.5, 2.0))
    with pytest.raises(DataError, match="tilt range"):
        Perspective(tilt=(30.0, 85.0))


# -- the pairs: ranges recovered from the truth ------------------------------------------------
def test_feature_rotate_pairs_cover_the_circle_at_the_drawn_scale(samples):
    angles, scales = [], []
    for seed in range(3):
        for i in range(len(samples)):
            lin = linear_part(make_pair(samples, i, "rotate", seed=seed))
            angles.append(np.degrees(np.arctan2(lin[1, 0], lin[0, 0])))
            scales.append(np.sqrt(np.linalg.det(lin)))
            assert np.allclose(lin[0, 0], lin[1, 1]) and np.allclose(lin[0, 1], -lin[1, 0])
    angles, scales = np.array(angles), np.array(scales)
    assert np.histogram(angles, bins=4, range=(-180, 180))[0].min() >= 25  # every quadrant
    assert scales.min() >= 0.8 - 1e-9 and scales.max() <= 1.25 + 1e-9


def test_feature_zoom_pairs_have_their_scale_and_larger_templates(samples):
    larger = 0
    n = 0
    for seed in range(2):
        for i in range(len(samples)):
            out = make_pair(samples, i, "zoom-out", seed=seed)
            lin = linear_part(out)
            H0, W0 = samples.base(i).image.shape[:2]
            assert 0.25 - 1 / W0 <= lin[0, 0] <= 0.5 + 1 / W0
            assert 0.25 - 1 / H0 <= lin[1, 1] <= 0.5 + 1 / H0
            h, w = out.template.shape[:2]
            H, W = out.image.shape[:2]
            larger += h > H and w > W
            n += 1
            # the whole footprint lies in the image, even when the template is larger than it
            assert (out.polygon >= -1e-9).all()
            assert (out.polygon <= np.array([W, H]) + 1e-9).all()
            assert out.mask.sum() == geometry.mask_from_polygon(out.polygon, (H, W)).sum()
            inn = make_pair(samples, i, "zoom-in", seed=seed)
            lin = linear_part(inn)
            assert 2.0 <= lin[0, 0] <= 4.0 and np.isclose(lin[0, 0], lin[1, 1])
            assert inn.image.shape == samples.base(i).image.shape  # a window of the photo's size
    assert larger >= 0.35 * n  # the template larger than the whole image, on both sides


def test_feature_perspective_truth_is_a_real_viewpoint(samples):
    """Decompose each pair's homography with the known camera: the template plane's rotation
    is a true rotation (orthonormal columns), tilted 25–40° from the viewing direction, and the
    scale at the template's centre is in range."""
    tilts = []
    for seed in range(2):
        for i in range(len(samples)):
            base = samples.base(i)
            pair = make_pair(samples, i, "perspective", seed=seed)
            h, w = pair.template.shape[:2]
            f = Perspective().focal_px(base.image.shape[:2])
            c = geometry.project(pair.homography, np.array([[w / 2, h / 2]]))[0]
            K = np.array([[f, 0, c[0]], [0, f, c[1]], [0, 0, 1.0]])
            centred = np.array([[1.0, 0, w / 2], [0, 1, h / 2], [0, 0, 1]])
            M = np.linalg.inv(K) @ pair.homography @ centred
            M = M / np.linalg.norm(M[:, 0])
            r1, r2, t = M[:, 0], M[:, 1], M[:, 2]
            assert abs(np.linalg.norm(r2) - 1) < 1e-6 and abs(r1 @ r2) < 1e-6
            if t[2] < 0:
                r1, r2, t = -r1, -r2, -t
            assert np.allclose(t[:2], 0, atol=1e-6)  # the centre is on the optical axis
            tilt = np.degrees(np.arccos(abs(np.cross(r1, r2)[2])))
            assert 25 - 1e-6 <= tilt <= 40 + 1e-6
            assert 0.7 - 1e-6 <= f / t[2] <= 1.25 + 1e-6
            tilts.append(tilt)
    assert np.std(tilts) > 3  # spread over the range, not one value


def test_feature_viewpoint_homography_foreshortens_across_the_tilt_axis():
    hm = viewpoint_homography(40, 0, 0, 1.0, 1e6)  # very long lens: affine
    assert np.allclose(hm[:2, :2], [[1, 0], [0, np.cos(np.radians(40))]], atol=1e-5)


# -- exact truth -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VIEWS)
def test_feature_corner_markers_land_where_the_truth_says(name):
    """Each template corner carries a coloured square; the truth's corners (moved a quarter of
    the square inwards) must show that colour in the new image, on every seed."""
    src = MarkerSource()
    s = MarkerSource.SQUARE
    for seed in range(12):
        pair = make_pair(src, seed % 2, name, seed=seed)
        h, w = pair.template.shape[:2]
        x0, y0 = (MarkerSource.BOX[2] - w) // 2, (MarkerSource.BOX[3] - h) // 2  # zoom-in cut
        inner = np.array([[s / 2, s / 2], [w - s / 2, s / 2], [w - s / 2, h - s / 2],
                          [s / 2, h - s / 2]], float)
        if (w, h) != MarkerSource.BOX[2:]:  # a cut template keeps no corner square
            assert name == "zoom-in" and x0 >= 0 and y0 >= 0
            continue
        pts = geometry.project(pair.homography, inner)
        H, W = pair.image.shape[:2]
        assert pair.mask.shape == (H, W)
        for p, colour in zip(pts, MARKERS):
            x, y = int(np.floor(p[0])), int(np.floor(p[1]))
            assert 0 <= x < W and 0 <= y < H
            got = pair.image[y, x].astype(int)
            assert np.abs(got - colour.astype(int)).max() < 40, (name, seed, got, colour)


@pytest.mark.parametrize("name", VIEWS)
def test_feature_masks_are_the_polygon_clipped_to_the_image(samples, name):
    for i in range(0, len(samples), 5):
        pair = make_pair(samples, i, name, seed=i)
        H, W = pair.image.shape[:2]
        assert pair.mask.shape == (H, W) and pair.mask.dtype == bool and pair.mask.any()
        ref = geometry.mask_from_polygon(pair.polygon, (H, W))
        assert geometry.iou(pair.mask, ref) > 0.98
        h, w = pair.template.shape[:2]
        assert np.allclose(pair.polygon, geometry.template_polygon(pair.homography, (h, w)))


def test_feature_view_pixels_pull_back_onto_the_template(samples):
    """The image pulled back through the truth matches the template (rotate, zoom-in,
    perspective); zoom-out's footprint matches the template shrunk to it."""
    for name, limit in (("rotate", 12), ("zoom-in", 6), ("perspective", 14)):
        errs = []
        for i in range(0, len(samples), 3):
            pair = make_pair(samples, i, name, seed=1)
            h, w = pair.template.shape[:2]
            pulled = geometry.warp_image(pair.image, np.linalg.inv(pair.homography), (h, w))
            errs.append(np.abs(pulled[3:-3, 3:-3].astype(float) - pair.template[3:-3, 3:-3]).mean())
        assert np.median(errs) < limit / 2 and max(errs) < limit, (name, errs)
    for i in range(0, len(samples), 3):
        pair = make_pair(samples, i, "zoom-out", seed=2)
        x0, y0 = pair.polygon[0]
        x1, y1 = pair.polygon[2]
        a = np.ceil([x0, y0]).astype(int)
        b = np.floor([x1, y1]).astype(int)
        if (b - a).min() < 8:
            continue
        crop = pair.image[a[1]:b[1], a[0]:b[0]].astype(float)
        h, w = pair.template.shape[:2]
        sx, sy = (x1 - x0) / w, (y1 - y0) / h
        small = geometry.warp_image(cv2.GaussianBlur(pair.template, (0, 0), 0.5 / sx),
                                    np.array([[sx, 0, x0 - a[0]], [0, sy, y0 - a[1]], [0, 0, 1]]),
                                    crop.shape[:2]).astype(float)
        g1, g2 = crop.mean(axis=2) - crop.mean(), small.mean(axis=2) - small.mean()
        ncc = (g1 * g2).sum() / np.sqrt((g1 * g1).sum() * (g2 * g2).sum() + 1e-9)
        assert ncc > 0.8, (i, ncc)


def test_feature_views_are_deterministic_and_seeded(samples):
    for name in VIEWS:
        a = make_pair(samples, 5, name, seed=7)
        b = make_pair(samples, 5, name, seed=7)
        c = make_pair(samples, 5, name, seed=8)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.template, b.template)
        assert np.array_equal(a.homography, b.homography) and np.array_equal(a.mask, b.mask)
        assert not np.allclose(a.homography, c.homography)


def test_feature_views_compose_with_photometric_and_negatives(samples):
    for name in VIEWS:
        pair = make_pair(samples, 3, f"{name}+photometric", seed=0)
        assert pair.present and pair.meta.protocol == f"{name}+photometric"
        neg = make_pair(samples, 3, f"{name}+negatives", seed=0)
        assert not neg.present and not neg.mask.any() and neg.mask.shape == neg.image.shape[:2]
        absent_first = make_pair(samples, 3, f"negatives+{name}", seed=0)
        assert not absent_first.present and not absent_first.mask.any()
        assert absent_first.mask.shape == absent_first.image.shape[:2]


def test_smoke_registry_lists_the_views():
    for name in (*VIEWS, "screen"):
        assert name in PROTOCOLS
    from tmatch.bench.run import check_protocols

    assert check_protocols(["zoom-out", "rotate+photometric"]) == ["zoom-out", "rotate+photometric"]


class RefusesLarger(NCCMatcher):
    """ncc that refuses a template larger than the image, as every matcher did before it could
    search at smaller scales."""

    def match(self, template, image):
        if template.shape[0] > image.shape[0] or template.shape[1] > image.shape[1]:
            raise InputError("template is larger than the image")
        return super().match(template, image)


def test_feature_bench_records_templates_larger_than_the_image_as_errors(samples, tmp_path,
                                                                         monkeypatch):
    """A matcher that refuses a template larger than the image gets the case recorded as an
    error (not found, not correct), and the run goes on."""
    from tmatch.bench import load_table, run_bench
    from tmatch.registry import MATCHERS

    monkeypatch.setitem(MATCHERS, "refuses-larger", "tests.data.test_views:RefusesLarger")
    run_bench(tmp_path / "run", ["refuses-larger"], protocols=["zoom-out"], limit=8, seed=0,
              threads=1)
    table = load_table(tmp_path / "run").sort_values("index")
    assert len(table) == 8
    pairs = [make_pair(samples, i, "zoom-out", seed=0) for i in range(8)]
    larger = [p.template.shape[0] > p.image.shape[0] or p.template.shape[1] > p.image.shape[1]
              for p in pairs]
    assert any(larger) and not all(larger)
    for big, (_, row) in zip(larger, table.iterrows()):
        assert bool(row["error"]) == big
        if big:
            assert not row["found"] and not row["correct"] and row["iou"] == 0.0
