"""Cut-out composites: RGBA objects (made here from real photos) pasted onto photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from tmatch import geometry
from tmatch.data import CutoutSource, make_pair, open_source, warp_mask
from tmatch.errors import DataError


def ellipse_cutout(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """An RGBA ``(h, w, 4)`` cut-out: the ellipse inscribed in ``box`` of a real photo."""
    x, y, w, h = box
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[:, :, :3] = img[y:y + h, x:x + w]
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1)
    rgba[:, :, 3] = alpha
    return rgba


@pytest.fixture(scope="module")
def cutouts():
    coins = np.repeat(skdata.coins()[:, :, None], 3, axis=2)
    return [ellipse_cutout(skdata.chelsea(), (130, 80, 90, 80)),   # the left eye
            ellipse_cutout(coins, (297, 150, 70, 70)),             # a coin
            skdata.logo(),                                         # real alpha
            ellipse_cutout(skdata.astronaut(), (150, 10, 130, 160))]  # a face


@pytest.fixture()
def cutout_dir(tmp_path, cutouts):
    root = tmp_path / "stamps"
    (root / "sub").mkdir(parents=True)
    for k, c in enumerate(cutouts):
        cv2.imwrite(str(root / ("sub" if k % 2 else ".") / f"obj{k}.png"),
                    cv2.cvtColor(c, cv2.COLOR_RGBA2BGRA))
    return root


def test_feature_composites_have_true_object_masks(cutouts, coffee, rocket):
    src = CutoutSource(cutouts, [coffee, rocket], pairs_per_object=2, seed=1)
    assert len(src) == 8
    for i in range(len(src)):
        p = src.base(i)
        assert p.meta.source == "cutouts" and p.meta.target == "mask" and p.present
        x, y, w, h = p.meta.box
        assert min(w, h) >= 32
        assert np.array_equal(p.template, p.image[y:y + h, x:x + w])
        assert np.array_equal(p.template_mask, p.mask[y:y + h, x:x + w])
        assert not p.mask[:y].any() and not p.mask[y + h:].any()
        # the object's shape: its resized alpha
        k = i // 2
        alpha = cutouts[k][:, :, 3]
        ys, xs = np.nonzero(alpha >= 128)
        trimmed = alpha[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
        expect = cv2.resize(trimmed, (w, h), interpolation=cv2.INTER_AREA) >= 128
        assert geometry.iou(expect, p.template_mask) > 0.95
        # outside the object the background shows unchanged
        bg = [coffee, rocket][p.meta.image_id]
        outside = ~p.mask
        outside[max(0, y - 1):y + h + 1, max(0, x - 1):x + w + 1] = False
        assert np.array_equal(p.image[outside], bg[outside])


def test_feature_homography_on_cutouts_keeps_object_truth(cutouts, coffee):
    src = CutoutSource(cutouts, [coffee])
    for i in range(len(src)):
        base = src.base(i)
        pair = make_pair(src, i, "homography", seed=i)
        g = pair.homography @ np.linalg.inv(base.homography)
        assert geometry.iou(warp_mask(base.mask, g, base.mask.shape), pair.mask) > 0.98
        # object pixels pulled back into the template frame match the template there
        h, w = pair.template.shape[:2]
        pulled = geometry.warp_image(pair.image, np.linalg.inv(pair.homography), (h, w))
        inner = cv2.erode(pair.template_mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        diff = np.abs(pulled[inner].astype(int) - pair.template[inner]).mean()
        assert diff < 12


def test_feature_folders_default_backgrounds_negatives_and_split(cutout_dir):
    src = open_source(cutout_dir, kind="cutouts")
    assert len(src) == 4 and src.image_keys() == ["obj0.png", "obj2.png", "sub/obj1.png", "sub/obj3.png"]
    assert src.base(0).meta.label == "obj0"
    assert src.base(0).meta.image_name.startswith("skimage:")
    neg = make_pair(src, 1, "negatives", seed=0)
    assert not neg.present and neg.meta.ann_id != 1
    from tmatch.data import split

    tr, va = split(src, 0.5, seed=0)
    assert len(tr) == len(va) == 2


def test_feature_bad_cutouts_are_skipped(cutout_dir, coffee):
    cv2.imwrite(str(cutout_dir / "flat.png"), coffee[:50, :50, ::-1])       # no alpha
    (cutout_dir / "broken.png").write_bytes(b"\x89PNG broken")
    clear = np.zeros((40, 40, 4), np.uint8)
    cv2.imwrite(str(cutout_dir / "clear.png"), clear)                          # nothing opaque
    src = CutoutSource(cutout_dir, [coffee])
    labels = {src.base(i).meta.label for i in range(len(src))}
    assert labels == {"obj0", "obj1", "obj2", "obj3"}
    assert src.skipped.counts["unusable cut-out"] == 3


def test_exception_no_cutouts(tmp_path, coffee):
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no RGBA cut-outs"):
        CutoutSource(tmp_path / "none", [coffee])
    with pytest.raises(DataError, match="RGBA"):
        CutoutSource([coffee], [coffee])
    with pytest.raises(DataError, match="needs a folder"):
        open_source(None, kind="cutouts")
