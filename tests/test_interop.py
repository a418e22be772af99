"""Matches into the tools people already use, and images from them: COCO results evaluated by
pycocotools, supervision's Detections, PIL images and torch tensors as inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tmatch
from tmatch.interop import to_coco_results, to_detections


@pytest.fixture(scope="module")
def found(astronaut):
    return tmatch.load_matcher("ncc").match(astronaut[100:220, 150:300], astronaut)


def test_boxes_in_both_conventions(found):
    assert found.xywh == (150, 100, 150, 120)
    assert found.xyxy == (150, 100, 300, 220)
    absent = tmatch.Match.absent((5, 5))
    assert absent.xyxy is None and absent.xywh is None and absent.to_coco(1) is None


def test_coco_results_evaluate_with_cocoeval(found, tmp_path, astronaut):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    H, W = astronaut.shape[:2]
    truth = np.zeros((H, W), np.uint8)
    truth[100:220, 150:300] = 1
    gt = {"images": [{"id": 3, "width": W, "height": H}, {"id": 4, "width": W, "height": H}],
          "categories": [{"id": 1, "name": "template"}],
          "annotations": [{"id": 1, "image_id": 3, "category_id": 1, "bbox": [150, 100, 150, 120],
                           "area": 150 * 120, "iscrowd": 0,
                           "segmentation": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in
                                            mask_utils.encode(np.asfortranarray(truth)).items()}}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    results = to_coco_results([found, tmatch.Match.absent((H, W))], image_ids=[3, 4])
    assert len(results) == 1  # the absent one lists no detection
    coco = COCO(str(tmp_path / "gt.json"))
    for iou_type in ("bbox", "segm"):
        ev = COCOeval(coco, coco.loadRes(results), iou_type)
        ev.evaluate(); ev.accumulate(); ev.summarize()
        assert ev.stats[0] > 0.99  # AP@[.5:.95] of an exact crop


def test_coco_results_check_lengths(found):
    with pytest.raises(ValueError, match="image ids"):
        to_coco_results([found], image_ids=[1, 2])


def test_supervision_detections(found, astronaut):
    sv = pytest.importorskip("supervision")
    det = found.to_detections(class_id=7)
    assert isinstance(det, sv.Detections) and len(det) == 1
    assert det.xyxy.tolist() == [[150, 100, 300, 220]] and det.class_id.tolist() == [7]
    assert det.mask.shape == (1, *astronaut.shape[:2]) and det.mask[0, 150, 200]
    assert len(to_detections([tmatch.Match.absent(astronaut.shape[:2])])) == 0
    # supervision's own annotator draws it
    out = sv.BoxAnnotator().annotate(astronaut.copy(), det)
    assert (out != astronaut).any()


def test_pil_and_torch_inputs(astronaut):
    from PIL import Image

    crop = astronaut[100:220, 150:300]
    ncc = tmatch.load_matcher("ncc")
    assert ncc.match(Image.fromarray(crop), Image.fromarray(astronaut)).box == (150, 100, 150, 120)
    torch = pytest.importorskip("torch")
    chw = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255.0  # torchvision layout
    assert ncc.match(crop, chw[None]).box == (150, 100, 150, 120)
    assert np.array_equal(tmatch.read_image(torch.from_numpy(astronaut)), astronaut)
    with pytest.raises(tmatch.InputError, match="batch"):
        tmatch.read_image(torch.zeros(2, 3, 8, 8))
    gray = Image.fromarray(astronaut[:, :, 0])
    assert tmatch.read_image(gray).shape == astronaut.shape


def test_exif_orientation_applied(tmp_path, astronaut):
    from PIL import Image, ImageOps

    src = Image.fromarray(astronaut[:200, :300])
    for tag in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = tag
        p = tmp_path / f"o{tag}.jpg"
        src.save(p, exif=exif, quality=95)
        with Image.open(p) as im:
            want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        got = tmatch.read_image(p)
        assert got.shape == want.shape, tag
        assert np.abs(got.astype(int) - want).mean() < 2, tag


def test_multipage_tiff_says_page_one(tmp_path, astronaut):
    from PIL import Image

    p = tmp_path / "pages.tiff"
    Image.fromarray(astronaut).save(p, save_all=True, append_images=[Image.fromarray(astronaut[::-1])])
    with pytest.warns(tmatch.io.PageWarning, match="2 pages"):
        img = tmatch.read_image(p)
    assert np.array_equal(img, astronaut)
