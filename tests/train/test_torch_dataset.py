"""The torch dataset: deterministic per (seed, epoch, slot), negatives, mixing, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tmatch.data import open_source, split
from tmatch.data.torch_dataset import IndexPool, PairDataset, collate
from tmatch.models.config import ModelConfig
from tmatch.train.distributed import SlotSampler

NEURAL = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
DUAL = ModelConfig(arch="dual-unet", encoder="efficientnet-lite0", input_size=64, pretrained=False)


@pytest.fixture(scope="module")
def samples():
    return open_source(None)


def _ds(src, **kw):
    opts = {"length": 12, "protocol": "homography+photometric", "wrong_query_rate": 0.3, "seed": 3}
    opts.update(kw)
    return PairDataset([src], opts.pop("config", NEURAL), **opts)


def test_shapes_both_archs(samples):
    s = _ds(samples)[(0, 0)]
    assert s.image.shape == (3, 64, 64) and s.query.shape == (3, 32, 32)
    assert s.target.shape == (1, 64, 64) and s.image.dtype == torch.float32
    d = _ds(samples, config=DUAL)[(0, 0)]
    assert d.image.shape == d.query.shape == (3, 64, 64)  # the centred-query canvas
    assert set(torch.unique(d.target).tolist()) <= {0.0, 1.0}


def test_deterministic_per_seed_epoch_slot(samples):
    a, b = _ds(samples), _ds(open_source(None))  # a fresh instance: nothing cached matters
    for key in [(0, 0), (0, 5), (2, 5)]:
        x, y = a[key], b[key]
        assert torch.equal(x.image, y.image) and torch.equal(x.query, y.query)
        assert torch.equal(x.target, y.target) and x.key == key
    # Another epoch or seed gives other pairs.
    assert not torch.equal(a[(0, 5)].image, a[(1, 5)].image)
    assert not torch.equal(a[(0, 5)].image, _ds(samples, seed=4)[(0, 5)].image)
    assert torch.equal(a[5].image, a[(0, 5)].image)  # an int key is epoch 0


def test_negatives_rate_and_empty_targets(samples):
    ds = _ds(samples, length=400, wrong_query_rate=0.2)
    negs = [ds.describe(0, k)[2] for k in range(400)]
    assert 0.13 < np.mean(negs) < 0.27
    k = negs.index(True)
    s = ds[(0, k)]
    assert float(s.present) == 0.0 and float(s.target.sum()) == 0.0
    pos = ds[(0, negs.index(False))]
    assert float(pos.present) == 1.0 and float(pos.target.sum()) > 0


def test_negative_templates_come_from_the_same_split(samples):
    train, _ = split(samples, 0.75, seed=0)
    ds = PairDataset([samples], NEURAL, length=40, indices=[train], protocol="seed",
                     wrong_query_rate=1.0, seed=0)
    allowed = {samples.base(i).meta.ann_id for i in train}
    for k in range(0, 40, 5):
        pair = ds.pair(0, k)
        assert not pair.present and pair.meta.ann_id in allowed
    assert repr(ds.negative_steps[0][-1].pool).startswith("pool(n=")


def test_epoch_covers_a_small_source_evenly(samples):
    idx = [0, 1, 2, 3, 4]
    ds = PairDataset([samples], NEURAL, length=10, indices=[idx], seed=1)
    _, chosen = ds.plan(0)
    assert sorted(chosen.tolist()) == sorted(idx * 2)
    assert not np.array_equal(ds.plan(0)[1], ds.plan(1)[1])


def test_mixing_sources_by_weight(samples):
    other = open_source(None)
    ds = PairDataset([samples, other], NEURAL, length=4000, weights=[3, 1], seed=0)
    src, _ = ds.plan(0)
    assert 0.72 < np.mean(src == 0) < 0.78
    s = ds[(0, int(np.flatnonzero(src == 1)[0]))]
    assert s.image.shape == (3, 64, 64)


def test_dataloader_workers_give_the_same_batches(samples):
    ds = _ds(samples, length=8)
    loaders = [torch.utils.data.DataLoader(ds, batch_size=4, sampler=SlotSampler(8), collate_fn=collate,
                                           num_workers=w) for w in (0, 2)]
    for sampler_epoch in (0, 1):
        for ld in loaders:
            ld.sampler.set_epoch(sampler_epoch)
        b0, b2 = (list(ld) for ld in loaders)
        assert [b.keys for b in b0] == [b.keys for b in b2]
        assert all(torch.equal(x.image, y.image) and torch.equal(x.target, y.target)
                   for x, y in zip(b0, b2))
        assert b0[0].keys[0] == (sampler_epoch, 0)


def test_index_pool_repr_is_short_and_stable():
    a, b = IndexPool(range(100_000)), IndexPool(range(100_000))
    assert repr(a) == repr(b) and len(repr(a)) < 40 and a[5] == 5


def test_bad_arguments(samples):
    from tmatch.errors import DataError

    with pytest.raises(DataError):
        PairDataset([], NEURAL, length=2)
    with pytest.raises(DataError):
        PairDataset([samples], NEURAL, length=2, indices=[[]])
    with pytest.raises(ValueError):
        PairDataset([samples], NEURAL, length=2, wrong_query_rate=1.5)


def test_footprint_target_is_the_warped_template_rectangle():
    """Cut-outs carry object silhouettes; the footprint target is their template's quad."""
    import numpy as np
    from skimage import data as skdata

    from tmatch.data.cutouts import CutoutSource
    from tmatch.data.torch_dataset import PairDataset
    from tmatch.geometry import mask_from_polygon
    from tmatch.models.config import ModelConfig

    import tempfile, cv2, pathlib
    with tempfile.TemporaryDirectory() as d:
        cat = skdata.chelsea()[50:250, 100:300]
        alpha = np.zeros(cat.shape[:2], np.uint8)
        cv2.circle(alpha, (100, 100), 90, 255, -1)  # a round object in a square box
        rgba = np.dstack([cat, alpha])
        cv2.imwrite(str(pathlib.Path(d) / "round.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        src = CutoutSource(d, pairs_per_object=2)
        cfg = ModelConfig(arch="neural-seg", input_size=64, template_size=32, pretrained=False)
        fp = PairDataset([src], cfg, length=2, protocol="homography", target="footprint")
        ms = PairDataset([src], cfg, length=2, protocol="homography", target="mask")
        pair = fp.pair(0, 0)
        assert pair.polygon is not None and pair.meta.target == "mask"
        want = mask_from_polygon(pair.polygon, pair.image.shape[:2])
        assert want.sum() > pair.mask.sum()  # the rectangle covers more than the silhouette
        t_fp, t_ms = fp[(0, 0)].target, ms[(0, 0)].target
        assert float(t_fp.sum()) > float(t_ms.sum())
