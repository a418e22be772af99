"""What the pictures show: pixels where the polygon, mask and truth are (viz, data.show,
train.plots, the demo)."""

from __future__ import annotations

import numpy as np

from tmatch import geometry, io, viz
from tmatch.match import Match

GRAY = 100


def _canvas(h: int = 120, w: int = 160) -> np.ndarray:
    return np.full((h, w, 3), GRAY, np.uint8)


def _match(x: int, y: int, w: int, h: int, shape: tuple[int, int]) -> Match:
    poly = geometry.rect_polygon(x, y, w, h)
    return Match(found=True, score=0.9, polygon=poly, box=(x, y, w, h),
                 mask=geometry.mask_from_polygon(poly, shape))


def _is(color: tuple[int, int, int], px: np.ndarray, tol: int = 40) -> bool:
    return bool(np.abs(px.astype(int) - np.array(color)).max() <= tol)


def test_overlay_outlines_the_polygon_tints_the_mask_and_leaves_the_rest():
    img = _canvas()
    out = viz.overlay(img, _match(40, 30, 60, 50, img.shape[:2]), truth=geometry.rect_polygon(10, 80, 30, 20))
    assert np.array_equal(img, _canvas())  # drawn on a copy
    # the outline runs along the polygon's edges (left edge x=40, rows 50..70)
    assert all(_is(viz.GREEN, out[y, 40]) for y in range(50, 70))
    # inside: tinted towards green (alpha 0.35), not covered
    inside = out[55, 70].astype(int)
    assert inside[1] > GRAY + 20 and inside[0] < GRAY
    # the truth polygon is outlined in blue where it is, nowhere near the match
    assert _is(viz.BLUE, out[90, 10], tol=60)
    # far from both: untouched
    assert np.array_equal(out[10, 150], img[10, 150]) and np.array_equal(out[110, 150], img[110, 150])


def test_overlay_says_not_found_in_red_and_tints_nothing():
    img = _canvas()
    out = viz.overlay(img, Match.absent(img.shape[:2]))
    changed = np.abs(out.astype(int) - img.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert len(ys) and ys.max() < 50 and xs.min() < 20  # the text at the top left only
    reddish = (out[..., 0].astype(int) - out[..., 1].astype(int)) > 80
    assert reddish.any() and not reddish[60:].any()


def test_panel_and_grid_place_images_at_a_common_height():
    a = np.zeros((50, 100, 3), np.uint8)
    b = np.full((100, 100, 3), 255, np.uint8)
    p = viz.panel([a, b], height=60)
    assert p.shape[0] >= 60 and p.shape[1] >= 120 + 60
    g = viz.grid([p, viz.panel([a], height=60)])
    assert g.shape[1] == p.shape[1] and g.shape[0] > 2 * 60
    # the white image is on the right of the black one
    mid = p.shape[0] - 30
    assert p[mid, 10].max() < 30 and p[mid, p.shape[1] - 10].min() > 225


def test_draw_truth_tints_the_target_and_marks_its_corner():
    from tmatch.data import make_pair, open_source
    from tmatch.data.show import draw_truth, pairs_sheet

    pair = make_pair(open_source(None), 0, protocol="seed", seed=0)
    out = draw_truth(pair)
    ys, xs = np.nonzero(pair.mask)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    x0, y0 = (int(v) for v in np.round(pair.polygon[0] - 0.5))
    expected = (pair.image[cy, cx] * 0.65 + np.array(viz.GREEN) * 0.35).astype(np.uint8)
    assert np.abs(out[cy, cx].astype(int) - expected.astype(int)).max() <= 2
    far = ~geometry.mask_from_polygon(pair.polygon, pair.mask.shape)
    far[max(0, y0 - 12):y0 + 12, max(0, x0 - 12):x0 + 12] = False  # the corner dot
    outline = np.zeros_like(far)
    for dy in range(-4, 5):  # the outline's width around the target
        for dx in range(-4, 5):
            outline |= np.roll(np.roll(pair.mask, dy, 0), dx, 1)
    far &= ~outline
    assert np.array_equal(out[far], pair.image[far])  # away from the target nothing is drawn
    assert _is(viz.RED, out[y0, x0], tol=60)  # the template's top-left corner
    sheet = pairs_sheet([pair, pair], height=80)
    assert sheet.ndim == 3 and sheet.shape[0] >= 2 * 80


def test_prediction_row_tints_truth_blue_and_prediction_green():
    from tmatch.train.plots import PredictionView, prediction_grid, tint

    img = _canvas(64, 64)
    truth = np.zeros((64, 64), bool)
    truth[10:30, 10:30] = True
    t = tint(img, truth, viz.BLUE)
    assert _is(viz.BLUE, t[20, 20], tol=80) and np.array_equal(t[50, 50], img[50, 50])
    assert t[20, 20, 2] > GRAY + 40
    v = PredictionView(template=img[:20, :20], image=img, truth=truth, pred=truth[::-1].copy(), iou=0.0,
                       present=True, presence=0.7)
    grid = prediction_grid([v, v], height=64)
    blueish = (grid[..., 2].astype(int) - grid[..., 1].astype(int)) > 40
    greenish = (grid[..., 1].astype(int) - grid[..., 2].astype(int)) > 40
    assert blueish.any() and greenish.any()
    # the green (prediction) tile is to the right of the blue (truth) tile
    assert np.nonzero(greenish)[1].min() > np.nonzero(blueish)[1].min()


def test_demo_draws_the_found_match_on_each_case(tmp_path):
    from tmatch.demo import run_demo, summarize

    rows = run_demo(tmp_path, methods=["ncc"], protocols=("seed",), cases=1)
    assert len(rows) == 1 and rows[0].found and rows[0].iou > 0.9
    (png,) = sorted(tmp_path.glob("*.png"))
    panel = io.read_image(png)
    green = (np.abs(panel.astype(int) - np.array(viz.GREEN)).max(axis=2) <= 40)
    assert green.sum() > 50  # the match's outline
    # the outline is in the overlay tile (right of the template tile), not on the template
    assert np.nonzero(green)[1].min() > panel.shape[1] // 3
    assert summarize(rows)[0].found == 1


def _tag_rects(img, matches, names):
    """Where overlay() puts each match's tag (the same placement it draws with)."""
    taken, rects = [], []
    for m, n in zip(matches, names):
        s = f"{n} {m.score:.2f}"
        org = viz._place_tag(img, s, np.asarray(m.polygon, np.float64), taken)
        taken.append(viz._text_rect(img, s, org))
        rects.append(taken[-1])
    return rects


def _overlap(a, b) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def test_two_templates_in_one_image_get_their_names_beside_their_own_boxes():
    """Issue 23 item 11: batch overlays wrote every template's name at the same bottom-left spot."""
    img = _canvas(240, 320)
    ms = [_match(60, 80, 50, 40, img.shape[:2]), _match(70, 95, 50, 40, img.shape[:2])]  # overlapping boxes
    names = ["play-button", "pause-button"]
    rects = _tag_rects(img, ms, names)
    assert _overlap(rects[0], rects[1]) == 0
    for (x0, y0, x1, y1), m in zip(rects, ms):
        bx, by, bw, bh = m.box
        assert x1 > bx - 5 and x0 < bx + bw + 5 and y1 > by - 40 and y0 < by + bh + 40  # near its box
    out = viz.overlay(img, ms, names=names)
    for x0, y0, x1, y1 in rects:  # each tag is drawn where it was placed (green text pixels)
        patch = out[y0:y1, x0:x1].reshape(-1, 3).astype(int)
        assert (np.abs(patch - viz.GREEN).max(axis=1) < 60).sum() > 10
    below = out[img.shape[0] - 20:, :60]  # nothing is written at the old bottom-left spot
    assert (np.abs(below.reshape(-1, 3).astype(int) - viz.GREEN).max(axis=1) < 60).sum() == 0


def test_a_tag_at_the_image_edge_is_moved_inside_not_cut_off():
    img = _canvas(120, 160)
    for box in ((0, 0, 40, 30), (130, 0, 30, 30), (0, 95, 40, 25), (125, 90, 35, 30), (0, 0, 160, 120)):
        m = _match(*box, img.shape[:2])
        (x0, y0, x1, y1), = _tag_rects(img, [m], ["a-long-template-name"[:10]])
        assert x0 >= 0 and y0 >= 0 and x1 <= 160 and y1 <= 120, (box, (x0, y0, x1, y1))


def test_names_must_match_the_matches():
    import pytest

    img = _canvas()
    with pytest.raises(ValueError):
        viz.overlay(img, [_match(10, 10, 20, 20, img.shape[:2])], names=["a", "b"])
