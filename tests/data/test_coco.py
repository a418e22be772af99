"""COCO source: indexing, targets, downscaling, and bad data skipped and counted."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from PIL import Image

from tmatch import geometry
from tmatch.data import CocoSource, open_source
from tmatch.errors import DataError


def test_feature_one_pair_per_large_annotation_with_ids_and_labels(coco_factory, astronaut, coffee):
    ann = coco_factory({"a.png": astronaut, "c.png": coffee}, [
        {"file": "a.png", "bbox": [150, 20, 130, 150], "id": 11, "category_id": 2},
        {"file": "a.png", "bbox": [10, 10, 20, 100], "id": 12},        # 20 px wide: too small
        {"file": "c.png", "bbox": [180.4, 20.2, 225.3, 245.1], "id": 13},
    ])
    src = CocoSource(ann)
    assert len(src) == 2
    p = src.base(0)
    assert (p.meta.source, p.meta.image_id, p.meta.ann_id, p.meta.label) == ("coco", 1, 11, "other")
    assert p.meta.box == (150, 20, 130, 150) and p.meta.image_name == "a.png"
    assert np.array_equal(p.template, astronaut[20:170, 150:280])
    assert np.array_equal(p.image, astronaut)
    assert p.mask.sum() == 130 * 150 and p.mask[20:170, 150:280].all()
    assert np.allclose(p.polygon, geometry.rect_polygon(150, 20, 130, 150))
    assert p.present and p.template_mask is None
    q = src.base(1)
    assert q.meta.ann_id == 13 and q.meta.box == (180, 20, 226, 245)
    assert src.image_keys() == ["1", "2"]
    assert "box under min_query_hw=32" in src.skipped.summary()


def test_feature_large_photos_are_downscaled_with_their_boxes(coco_factory, coffee):
    ann = coco_factory({"c.png": coffee}, [{"file": "c.png", "bbox": [180, 20, 240, 250]}])
    p = CocoSource(ann, max_side=300).base(0)
    assert p.image.shape == (200, 300, 3)
    assert p.meta.box == (90, 10, 120, 125)
    assert p.template.shape == (125, 120, 3)
    assert np.array_equal(p.template, p.image[10:135, 90:210])
    # min_query_hw applies to the downscaled box
    ann2 = coco_factory({"c.png": coffee}, [{"file": "c.png", "bbox": [180, 20, 60, 250]}])
    with pytest.raises(DataError, match="no usable annotations"):
        CocoSource(ann2, max_side=300)


def test_feature_segmentation_target_gives_the_object_mask(coco_factory, coffee):
    # a triangle inside its box
    seg = [[200, 40, 400, 40, 300, 240]]
    ann = coco_factory({"c.png": coffee}, [{"file": "c.png", "bbox": [200, 40, 200, 200],
                                            "segmentation": seg}])
    box = CocoSource(ann, target="box").base(0)
    tri = CocoSource(ann, target="mask").base(0)
    assert box.meta.target == "box" and tri.meta.target == "mask"
    assert tri.mask.sum() == pytest.approx(0.5 * 200 * 200, rel=0.03)
    assert tri.mask[60, 300] and not tri.mask[220, 210]
    assert tri.template_mask.shape == tri.template.shape[:2]
    assert np.array_equal(tri.template_mask, tri.mask[40:240, 200:400])
    # downscaled polygons are scaled, not re-rasterised from the full-size mask
    half = CocoSource(ann, target="mask", max_side=300).base(0)
    assert half.mask.sum() == pytest.approx(0.5 * 100 * 100, rel=0.05)


def test_feature_rle_segmentation_and_missing_segmentation_fall_back(coco_factory, coffee):
    from tmatch import rle

    m = np.zeros(coffee.shape[:2], bool)
    m[50:150, 100:300] = True
    ann = coco_factory({"c.png": coffee}, [
        {"file": "c.png", "bbox": [100, 50, 200, 100], "segmentation": rle.encode(m)},
        {"file": "c.png", "bbox": [300, 200, 100, 100]},
    ])
    src = CocoSource(ann, target="mask")
    assert np.array_equal(src.base(0).mask, m)
    fallback = src.base(1)
    assert fallback.meta.target == "box" and fallback.mask.sum() == 100 * 100
    assert "no usable segmentation" in src.skipped.summary()


def test_feature_open_source_finds_coco_layouts(tmp_path, coco_factory, astronaut):
    ann = coco_factory({"a.png": astronaut}, [{"file": "a.png", "bbox": [150, 20, 130, 150]}])
    by_folder = open_source(ann.parent)
    by_file = open_source(ann)
    # the original's names: images folder + annotation path
    by_pair = open_source(ann.parent / "images", annotations=ann)
    for src in (by_folder, by_file, by_pair):
        assert isinstance(src, CocoSource) and len(src) == 1
    # COCO's own layout: annotations/instances_val.json and val/
    root = tmp_path / "cocolayout"
    (root / "annotations").mkdir(parents=True)
    (root / "val").mkdir()
    (ann.parent / "images" / "a.png").rename(root / "val" / "a.png")
    ann.rename(root / "annotations" / "instances_val.json")
    src = open_source(root)
    assert src.images_dir == root / "val" and len(src) == 1


def test_exception_unusable_annotation_files_are_data_errors(tmp_path, coco_factory, astronaut):
    with pytest.raises(DataError, match="not found"):
        CocoSource(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        CocoSource(bad)
    bad.write_text('{"images": []}')
    with pytest.raises(DataError, match="not a COCO"):
        CocoSource(bad)
    empty = coco_factory({"a.png": astronaut}, [])
    with pytest.raises(DataError, match="no usable annotations"):
        CocoSource(empty)
    with pytest.raises(DataError, match="unknown target"):
        CocoSource(empty, target="polygon")
    with pytest.raises(DataError, match="not found"):
        open_source(tmp_path / "missing")


def test_feature_broken_records_are_skipped_and_counted_in_one_line(coco_factory, astronaut, coffee, caplog):
    anns = [
        {"file": "a.png", "bbox": [150, 20, 130, 150], "id": 1},           # good
        {"file": "a.png", "bbox": [10, 10, 0, 50], "id": 2},               # zero size
        {"file": "a.png", "bbox": [600, 600, 50, 50], "id": 3},            # outside the image
        {"file": "a.png", "bbox": [480, 480, 100, 100], "id": 4},          # mostly outside
        {"file": "a.png", "bbox": "oops", "id": 5},                        # broken bbox
        {"file": "a.png", "id": 6},                                        # no bbox
        {"file": "ghost.png", "bbox": [0, 0, 50, 50], "id": 7},            # unknown image
        {"file": "a.png", "bbox": [0, 0, 50, 50], "id": 1},                # duplicate id
        {"file": "a.png", "bbox": [0, 0, 50, 50], "id": 8, "iscrowd": 1},  # crowd
        {"file": "gone.png", "bbox": [0, 0, 50, 50], "id": 9},             # file missing
        {"file": "a.png", "bbox": [460, 450, 60, 70], "id": 10},           # slightly outside: clipped
    ]
    photos = {"a.png": astronaut, "gone.png": None}
    images = [{"id": 1, "file_name": "a.png", "width": 512, "height": 512},
              {"id": 2, "file_name": "gone.png", "width": 100, "height": 100},
              {"id": 3, "file_name": "nodims.png"}]
    ann = coco_factory(photos, anns, images=images)
    with caplog.at_level(logging.WARNING, logger="tmatch.data"):
        src = CocoSource(ann)
    assert len(src) == 2
    assert src.base(1).meta.box == (460, 450, 52, 62)
    counts = src.skipped.counts
    assert counts["zero-size box"] == 1
    assert counts["box outside image"] == 2
    assert counts["broken annotation"] == 2
    assert counts["annotation of an unknown image"] == 1
    assert counts["duplicate annotation id"] == 1
    assert counts["crowd annotation"] == 1
    assert counts["missing image file"] == 1
    assert counts["broken image record"] == 1
    lines = [r for r in caplog.records if r.name == "tmatch.data"]
    assert len(lines) == 1 and "skipped" in lines[0].getMessage()


def test_feature_unreadable_and_odd_images_never_crash_a_pass(coco_factory, astronaut, coffee, chelsea):
    ann = coco_factory({"a.png": astronaut, "broken.jpg": coffee, "gray.png": astronaut[:, :, 0],
                        "cmyk.jpg": None, "c.png": chelsea}, [
        {"file": "a.png", "bbox": [150, 20, 130, 150]},
        {"file": "broken.jpg", "bbox": [180, 20, 220, 240]},
        {"file": "gray.png", "bbox": [150, 20, 130, 150]},
        {"file": "cmyk.jpg", "bbox": [150, 20, 130, 150]},
        {"file": "c.png", "bbox": [100, 50, 200, 150]},
    ], images=[{"id": k, "file_name": n, "width": w, "height": h} for k, (n, w, h) in enumerate(
        [("a.png", 512, 512), ("broken.jpg", 600, 400), ("gray.png", 512, 512), ("cmyk.jpg", 512, 512),
         ("c.png", 451, 300)], start=1)])
    images = ann.parent / "images"
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    Image.fromarray(astronaut).convert("CMYK").save(images / "cmyk.jpg")
    src = CocoSource(ann)
    assert len(src) == 5
    pairs = [src.base(i) for i in range(len(src))]
    # the broken photo's pair is replaced by the next readable one, and counted once
    assert pairs[1].meta.image_name == "gray.png"
    assert src.skipped.counts["unreadable image"] == 1
    gray = pairs[2]
    assert gray.image.shape == (512, 512, 3) and np.array_equal(gray.image[..., 0], gray.image[..., 2])
    cmyk = pairs[3]  # converted to RGB, close to the original photo
    assert cmyk.image.shape == (512, 512, 3)
    assert np.abs(cmyk.image.astype(int) - astronaut).mean() < 20
    for _ in range(2):  # a second pass does not recount
        [src.base(i) for i in range(len(src))]
    assert src.skipped.counts["unreadable image"] == 1


def test_exception_no_readable_image_is_a_data_error(coco_factory, astronaut):
    ann = coco_factory({"a.png": astronaut}, [{"file": "a.png", "bbox": [150, 20, 130, 150]}])
    (ann.parent / "images" / "a.png").write_bytes(b"garbage")
    src = CocoSource(ann)
    with pytest.raises(DataError, match="none of the 1 pairs"):
        src.base(0)


def test_feature_json_sizes_differing_from_the_file_are_rescaled(coco_factory, coffee):
    """Annotations made on the full photo still fit when the folder holds a half-size copy."""
    small = cv2.resize(coffee, (300, 200), interpolation=cv2.INTER_AREA)
    ann = coco_factory({"c.png": small}, [{"file": "c.png", "bbox": [180, 20, 240, 250]}],
                       images=[{"id": 1, "file_name": "c.png", "width": 600, "height": 400}])
    p = CocoSource(ann).base(0)
    assert p.meta.box == (90, 10, 120, 125)
