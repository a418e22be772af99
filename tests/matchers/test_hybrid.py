from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
import pytest

import tmatch
from tests.matchers.base import MatcherContract, corner_error, place
from tmatch import geometry
from tmatch.matchers.base import Matcher
from tmatch.registry import MATCHERS


class FixedLocator(Matcher):
    """A locator that answers ``answer`` whatever the images (a wrong or rough locator)."""

    name = "fixed"
    answer: ClassVar[tmatch.Match | None] = None

    def _match(self, prepared, template, image):
        return copy.deepcopy(type(self).answer)


@pytest.fixture()
def located(monkeypatch):
    """``located(match, **hybrid_options)``: a hybrid whose locator answers ``match``."""
    monkeypatch.setitem(MATCHERS, "fixed", "tests.matchers.test_hybrid:FixedLocator")

    def make(match, **options):
        monkeypatch.setattr(FixedLocator, "answer", match)
        return tmatch.load_matcher("hybrid", locator="fixed", **options)

    return make


class TestHybridWithNCCLocator(MatcherContract):
    """The hybrid contract with a classical locator (the neural one is tested with its weights)."""

    name = "hybrid"
    options = {"locator": "ncc", "locator_options": {"scales": (0.7, 1.2), "steps": 11, "threshold": 0.4}}
    corner_tolerance = 3.0
    placement = (0.85, 5.0)


def test_refinement_improves_on_the_locator(coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170, 0.85, 8.0)
    loc = tmatch.load_matcher("ncc", scales=(0.7, 1.2), steps=11, threshold=0.3).match(tpl, scene)
    hyb = tmatch.load_matcher("hybrid", locator="ncc",
                              locator_options={"scales": (0.7, 1.2), "steps": 11, "threshold": 0.3}).match(tpl, scene)
    assert hyb.extra["refined"] == "region" and hyb.homography is not None
    assert corner_error(hyb, hm, tpl.shape[:2]) < corner_error(loc, hm, tpl.shape[:2])


def test_inconsistent_refinement_is_rejected(coffee, chelsea, located):
    # The locator points at the wrong place (a region without the template): refinement inside it
    # cannot produce a consistent homography, so the locator's answer stands, marked unrefined.
    tpl = coffee[60:260, 180:420]
    scene, _ = place(tpl, chelsea, 230, 170)
    loc = tmatch.Match(True, 0.5, geometry.rect_polygon(0, 0, 60, 60), (0, 0, 60, 60),
                       geometry.mask_from_polygon(geometry.rect_polygon(0, 0, 60, 60), scene.shape[:2]))
    # (copies=False: the template is pasted as it is, which the copy search would find first)
    out = located(loc, fallback=False, copies=False, alone_agreement=-1.0).match(tpl, scene)
    assert out.extra["refined"] is False and out.box == (0, 0, 60, 60)


def test_an_answer_only_the_locator_gives_must_agree_with_the_image(coffee, chelsea, located):
    tpl = coffee[60:260, 180:420]
    scene, _ = place(tpl, chelsea, 230, 170)
    wrong = geometry.rect_polygon(0, 0, 60, 60)
    loc = tmatch.Match(True, 0.95, wrong, (0, 0, 60, 60), geometry.mask_from_polygon(wrong, scene.shape[:2]),
                       homography=np.array([[0.25, 0, 0], [0, 0.3, 0], [0, 0, 1.0]]))
    out = located(loc, fallback=False, copies=False).match(tpl, scene)
    assert not out.found and out.extra["unconfirmed"] is False and out.extra["agreement"] < 0.55


def test_the_locator_alone_needs_more_agreement_than_a_whole_image_refinement(coffee, chelsea, located):
    """A rough locator answer over the template (aligned correlation between the two bars) stands
    only when ``alone_agreement`` allows it: no keypoints and no alignment back it."""
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170)
    rough = hm @ np.array([[1.0, 0, 14.0], [0, 1.0, 10.0], [0, 0, 1.0]])  # 14 and 10 px off
    poly = geometry.template_polygon(rough, tpl.shape[:2])
    hw = scene.shape[:2]
    loc = tmatch.Match(True, 0.9, poly, geometry.box_from_polygon(poly, hw), geometry.mask_from_polygon(poly, hw),
                       homography=rough)
    agree = geometry.aligned_ncc(tpl, scene, rough)
    assert 0.2 < agree < 0.8
    opts = {"fallback": False, "copies": False, "ecc": False, "wider": False, "refiner": "sift", "min_inliers": 10**6}
    assert not located(loc, **opts).match(tpl, scene).found
    lenient = located(loc, **opts, alone_agreement=agree - 0.05).match(tpl, scene)
    assert lenient.found and lenient.extra["refined"] is False


def test_bad_refiner_rejected():
    with pytest.raises(ValueError):
        tmatch.load_matcher("hybrid", locator="ncc", refiner="ncc")


def test_fallback_refines_on_the_whole_image_when_the_region_is_wrong(coffee, chelsea, located):
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170)
    wrong = geometry.rect_polygon(0, 0, 60, 60)
    loc = tmatch.Match(True, 0.5, wrong, (0, 0, 60, 60), geometry.mask_from_polygon(wrong, scene.shape[:2]))
    out = located(loc, copies=False).match(tpl, scene)
    assert out.extra["refined"] == "global" and corner_error(out, hm, tpl.shape[:2]) < 3


def _perspective_scene(coffee, chelsea):
    tpl = coffee[60:260, 180:420]
    h, w = tpl.shape[:2]
    src = geometry.rect_polygon(0, 0, w, h)
    dst = src * 0.9 + np.array([150.0, 90.0])
    dst[1] += (8.0, -6.0)  # top-right corner pulled: a perspective, not a similarity
    dst[2] += (-5.0, 7.0)
    import cv2
    hm = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
    from tests.matchers.base import paste
    return tpl, paste(tpl, chelsea, hm), hm


def test_ecc_turns_a_rough_locator_answer_into_the_homography(coffee, chelsea, located):
    """When the feature refiner finds nothing in the region, ECC refines the locator's transform
    (here a similarity a few pixels off) to the true perspective homography."""
    tpl, scene, hm = _perspective_scene(coffee, chelsea)
    h, w = tpl.shape[:2]
    rough = np.array([[0.9, 0, 153.0], [0, 0.9, 88.0], [0, 0, 1]])
    poly = geometry.template_polygon(rough, (h, w))
    loc = tmatch.Match(True, 0.7, poly, geometry.box_from_polygon(poly, scene.shape[:2]),
                       geometry.mask_from_polygon(poly, scene.shape[:2]), homography=rough)
    before = corner_error(loc, hm, (h, w))
    # no feature match survives the ratio test: the region step fails
    out = located(loc, fallback=False, refiner_options={"ratio": 1e-6}).match(tpl, scene)
    assert out.extra["refined"] == "ecc" and out.extra["ecc"] >= 0.8
    assert before > 5 and corner_error(out, hm, (h, w)) < 1.5


def test_ecc_that_does_not_align_is_rejected(coffee, chelsea, astronaut, located):
    tpl = coffee[60:260, 180:420]
    rough = np.array([[0.9, 0, 100.0], [0, 0.9, 80.0], [0, 0, 1]])
    poly = geometry.template_polygon(rough, tpl.shape[:2])
    loc = tmatch.Match(True, 0.7, poly, geometry.box_from_polygon(poly, astronaut.shape[:2]),
                       geometry.mask_from_polygon(poly, astronaut.shape[:2]), homography=rough)
    m = located(loc, fallback=False, ecc_min=0.9, refiner_options={"ratio": 1e-6})
    out = m.match(tpl, astronaut)  # the template is not there
    assert out.extra["refined"] is False


def test_bad_ecc_options_rejected():
    from tmatch.errors import InputError

    for opts in ({"ecc_min": 0.0}, {"ecc_min": 1.5}, {"ecc_side": 4}):
        with pytest.raises(InputError):
            tmatch.load_matcher("hybrid", locator="ncc", **opts)


def test_neural_local_refiner_keeps_its_own_decision_and_describes_only_the_region_first(
        coffee, chelsea, located, monkeypatch):
    """With ``refiner="neural-local"`` the region try describes only the located region; a wrong
    locator is then overruled by the refiner's whole-image answer, accepted on its presence head
    (not an inlier count)."""
    from tmatch.matchers.neural_local.matcher import NeuralLocalMatcher

    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170, 0.8, 30.0)
    wrong = tmatch.Match(True, 0.9, geometry.rect_polygon(0, 0, 60, 60), (0, 0, 60, 60),
                         geometry.mask_from_polygon(geometry.rect_polygon(0, 0, 60, 60), scene.shape[:2]))
    described = []
    real = NeuralLocalMatcher.image_features
    monkeypatch.setattr(NeuralLocalMatcher, "image_features",
                        lambda self, im: described.append(im.shape[:2]) or real(self, im))
    out = located(wrong, refiner="neural-local", min_inliers=10_000).match(tpl, scene)
    assert out.found and out.extra["refined"] == "global"
    assert corner_error(out, hm, tpl.shape[:2]) <= 4.0
    region_hw, whole_hw = described
    assert region_hw[0] * region_hw[1] < 0.2 * whole_hw[0] * whole_hw[1] and whole_hw == scene.shape[:2]


def test_region_restricts_neural_local_keypoints(coffee, chelsea):
    """``match_in_region`` on neural-local sees only the keypoints inside the region."""
    nl = tmatch.load_matcher("neural-local", threads=1)
    tpl = coffee[60:260, 180:420]
    scene, hm = place(tpl, chelsea, 230, 170)
    prep = nl.prepare(tpl)
    inside = np.zeros(scene.shape[:2], bool)
    inside[:, :] = geometry.mask_from_polygon(geometry.template_polygon(hm, tpl.shape[:2]), scene.shape[:2])
    assert nl.match_in_region(prep, tpl, scene, inside).found
    assert not nl.match_in_region(prep, tpl, scene, ~inside).found
    assert not nl.match_in_region(prep, tpl, scene, np.zeros_like(inside)).found  # an empty region


@pytest.mark.parametrize("score, stands", [(0.6, False), (0.9, True)])
def test_locator_alone_needs_a_high_score_when_neural_local_finds_nothing(coffee, rocket, located, score, stands):
    """The template is absent: the locator's answer (wrong) survives a whole-image ``neural-local``
    search that found nothing only when its score is at least ``overrule``."""
    tpl = coffee[60:260, 180:420]
    scene = np.ascontiguousarray(rocket[:400, :500])
    box = geometry.rect_polygon(100, 100, 120, 100)
    wrong = tmatch.Match(True, score, box, (100, 100, 120, 100), geometry.mask_from_polygon(box, scene.shape[:2]),
                         homography=np.array([[0.5, 0, 100], [0, 0.5, 100], [0, 0, 1.0]]))
    lenient = {"min_agreement": -1.0, "alone_agreement": -1.0}
    out = located(wrong, refiner="neural-local", overrule=0.8, **lenient).match(tpl, scene)
    assert out.found is stands
    assert out.extra.get("overruled", False) is not stands
    # a refiner without its own presence decision leaves the locator's answer alone
    assert located(wrong, refiner="sift", overrule=0.8, **lenient).match(tpl, scene).found
    # ... and by default an answer nothing confirms must agree with the image: here it does not
    assert not located(wrong, refiner="sift", overrule=0.8).match(tpl, scene).found


# ---------------------------------------------------------------- pixel copies
def test_an_exact_copy_is_the_answer_before_any_locator(coffee, located):
    """However plain: a low-contrast patch, pasted as it is, is found by correlation."""
    tpl = np.ascontiguousarray(coffee[20:60, 20:70])  # a plain corner of the table
    never = tmatch.Match.absent(coffee.shape[:2])
    out = located(never).match(tpl, coffee)
    assert out.found and out.extra["refined"] == "copy" and out.box == (20, 20, 50, 40)
    assert out.extra["ncc"] > 0.99 and out.extra["ratio"] == 1.0


def test_a_copy_at_another_display_scale_is_found(astronaut, located):
    import cv2

    big = cv2.resize(astronaut, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)  # a 2x capture
    tpl = np.ascontiguousarray(big[200:280, 300:420])  # 80 x 120 px at 2x = 40 x 60 px at 1x
    out = located(tmatch.Match.absent(astronaut.shape[:2])).match(tpl, astronaut)
    assert out.found and out.extra["refined"] == "copy" and out.extra["ratio"] == 0.5
    assert geometry.box_iou(out.box, (150, 100, 60, 40)) > 0.9


def test_no_copy_and_nothing_else_is_absent(coffee, astronaut, located):
    out = located(tmatch.Match.absent(astronaut.shape[:2])).match(coffee[60:160, 180:300], astronaut)
    assert not out.found


def test_copies_off_leaves_the_answer_to_the_locator(coffee, located):
    tpl = np.ascontiguousarray(coffee[20:60, 20:70])
    out = located(tmatch.Match.absent(coffee.shape[:2]), copies=False).match(tpl, coffee)
    assert not out.found


# ---------------------------------------------------------------- rescue
def test_a_turned_down_candidate_that_aligns_is_rescued(coffee, chelsea, located):
    tpl, scene, hm = _perspective_scene(coffee, chelsea)
    rough = np.array([[0.9, 0, 153.0], [0, 0.9, 88.0], [0, 0, 1]])
    loc = tmatch.Match.absent(scene.shape[:2], score=0.2, candidate=rough.tolist())
    out = located(loc, fallback=False, copies=False, wider=False, refiner_options={"ratio": 1e-6}).match(tpl, scene)
    assert out.found and out.extra["rescued"] and out.extra["refined"] == "ecc"
    assert corner_error(out, hm, tpl.shape[:2]) < 1.5 and out.extra["agreement"] >= 0.9


def test_a_turned_down_candidate_elsewhere_stays_absent(coffee, chelsea, located):
    tpl, scene, _ = _perspective_scene(coffee, chelsea)
    far = np.array([[0.9, 0, 20.0], [0, 0.9, 250.0], [0, 0, 1]])
    loc = tmatch.Match.absent(scene.shape[:2], score=0.2, candidate=far.tolist())
    out = located(loc, fallback=False, copies=False, wider=False, refiner_options={"ratio": 1e-6}).match(tpl, scene)
    assert not out.found


def test_a_zoomed_view_is_found_by_correlation_when_everything_else_says_absent(astronaut, located):
    """The object 2.4x larger than the template and blurred: no display-scale ratio, but the
    last resort's ratios (0.25x-4x) find it; with wider=False it stays absent."""
    import cv2

    tpl = np.ascontiguousarray(astronaut[60:120, 180:260])  # 60 x 80
    big = cv2.resize(astronaut[30:180, 140:340], None, fx=2.378, fy=2.378, interpolation=cv2.INTER_CUBIC)
    scene = cv2.GaussianBlur(big, (0, 0), 1.2)
    blind = {"fallback": False, "refiner": "sift", "min_inliers": 10**6}  # keypoints see nothing
    out = located(tmatch.Match.absent(scene.shape[:2]), **blind).match(tpl, scene)
    assert out.found and out.extra["refined"] == "copy" and out.extra["wider"]
    truth = (round(40 * 2.378), round(30 * 2.378), round(80 * 2.378), round(60 * 2.378))
    assert geometry.box_iou(out.box, truth) > 0.85
    assert not located(tmatch.Match.absent(scene.shape[:2]), wider=False, **blind).match(tpl, scene).found


# ---------------------------------------------------------------- several instances
def _page(links=()):
    """A light 'page' of text lines, with a 24 x 70 px "Source" link pasted at ``links``
    (identical pixels); returns ``(link, page)``."""
    import cv2

    page = np.full((360, 480, 3), 245, np.uint8)
    for i, y in enumerate(range(20, 340, 22)):
        cv2.putText(page, f"line {i} of the documentation text", (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (40, 40, 40), 1, cv2.LINE_AA)
    link = np.full((24, 70, 3), 250, np.uint8)
    cv2.putText(link, "Source", (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 60, 200), 1, cv2.LINE_AA)
    for x, y in links:
        page[y:y + 24, x:x + 70] = link
    return link, page


def test_match_all_finds_every_identical_repeat_best_first_as_match_does():
    at = [(390, 40), (390, 150), (300, 290)]
    link, page = _page(at)
    m = tmatch.load_matcher("hybrid")
    best = m.match(link, page)
    found = m.match_all(link, page, max_instances=10)
    assert best.found and found and found[0].box == best.box
    assert sorted(f.box[:2] for f in found) == sorted(at)


def test_match_all_says_nothing_where_match_says_absent():
    """No phantom instances (issue 23 item 2: the link, absent from the page, came back as 3
    instances on words at 0.83-0.97 while match() said absent)."""
    link, page = _page()
    m = tmatch.load_matcher("hybrid")
    assert not m.match(link, page).found
    assert m.match_all(link, page, max_instances=10) == []


def test_a_small_plain_icon_cut_from_the_page_comes_back_exact():
    """Issue 23 items 3-4: a 28 px grey toolbar icon, an exact crop of the page: found, box exact."""
    import cv2

    _, page = _page()
    page[300:340, 400:470] = 236  # a toolbar strip
    cv2.circle(page, (420, 320), 8, (150, 150, 150), 2, cv2.LINE_AA)  # a grey magnifier
    cv2.line(page, (426, 326), (431, 331), (150, 150, 150), 2, cv2.LINE_AA)
    tpl = np.ascontiguousarray(page[306:334, 406:434])
    out = tmatch.load_matcher("hybrid").match(tpl, page)
    assert out.found and out.box == (406, 306, 28, 28) and out.score > 0.99
