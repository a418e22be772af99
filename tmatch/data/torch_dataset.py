"""Torch datasets of pairs: network inputs and targets, deterministic per (seed, epoch, slot).

:class:`PairDataset` draws the pairs of an epoch from one or several pair sources (mixed by
weight), turns a share of them into negatives (``wrong_query_rate``: a template from another
photo, empty mask — the original's rate was 0.2) and converts each into the network's inputs
with :func:`tmatch.models.inputs.prepare_inputs` / :func:`~tmatch.models.inputs.prepare_target` —
the same code the matchers run at inference, so training and inference see the same canvas
(the centred-query canvas for ``dual-unet``, the template canvas for ``neural``).

A key is ``(epoch, slot)``: slot ``k`` of epoch ``e`` is the same pair on every machine, in every
DataLoader worker, before and after a resume. :class:`tmatch.train.distributed.SlotSampler`
yields such keys; a plain integer ``k`` means ``(0, k)``.

Workers are forked as usual; they deliberately do not call ``cv2.setNumThreads`` — doing so in
a child forked while OpenCV's thread pool was busy in the parent can deadlock (seen here).

Shape letters: B batch, S network input side, T template canvas side.

>>> from tmatch.data import open_source
>>> from tmatch.models.config import ModelConfig
>>> ds = PairDataset([open_source(None)], ModelConfig(arch="neural-seg", input_size=64,
...                  template_size=32, pretrained=False), length=4)
>>> s = ds[(0, 1)]
>>> tuple(s.image.shape), tuple(s.query.shape), tuple(s.target.shape)
((3, 64, 64), (3, 32, 32), (1, 64, 64))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from tmatch.errors import DataError


@dataclass
class Sample:
    """One pair as network tensors.

    Attributes:
        image: ``(3, S, S)`` float32, normalised search image.
        query: ``(3, S, S)`` (dual-unet) or ``(3, T, T)`` (neural) float32 query.
        target: ``(1, S, S)`` float32 ``{0, 1}`` mask at network resolution.
        present: ``()`` float32, 1 when the template is in the image.
        key: ``(epoch, slot)`` the pair was drawn for.
    """

    image: torch.Tensor
    query: torch.Tensor
    target: torch.Tensor
    present: torch.Tensor
    key: tuple[int, int]


@dataclass
class Batch:
    """Stacked :class:`Sample` objects (see :func:`collate`).

    Attributes:
        image: ``(B, 3, S, S)``; query: ``(B, 3, S|T, S|T)``; target: ``(B, 1, S, S)``;
        present: ``(B,)``; keys: the ``B`` ``(epoch, slot)`` keys.
    """

    image: torch.Tensor
    query: torch.Tensor
    target: torch.Tensor
    present: torch.Tensor
    keys: list[tuple[int, int]]

    def __len__(self) -> int:
        return int(self.image.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch on ``device``."""
        mv = {f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
              for f in fields(self) if f.name != "keys"}
        return Batch(keys=self.keys, **mv)

    def pin_memory(self) -> Batch:
        """Page-locked copy (called by DataLoader when ``pin_memory=True``)."""
        mv = {f.name: getattr(self, f.name).pin_memory() for f in fields(self) if f.name != "keys"}
        return Batch(keys=self.keys, **mv)


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (the DataLoader ``collate_fn``)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    return Batch(image=torch.stack([s.image for s in samples]),
                 query=torch.stack([s.query for s in samples]),
                 target=torch.stack([s.target for s in samples]),
                 present=torch.stack([s.present for s in samples]),
                 keys=[s.key for s in samples])


def _seed_of(*parts: int) -> int:
    """A 32-bit seed mixed from integers (numpy's SeedSequence: well spread, stable)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


class IndexPool(tuple):
    """A tuple of pair indices whose ``repr`` is short and stable (``pool(n=…, crc=…)``).

    :func:`tmatch.data.make_pair` keys its random stream on the ``repr`` of the protocol steps;
    a split of a large COCO set would otherwise be printed in full for every pair.
    """

    def __repr__(self) -> str:
        import zlib

        crc = zlib.crc32(np.asarray(self, np.int64).tobytes())
        return f"pool(n={len(self)}, crc={crc:08x})"


def negative_steps(steps: Sequence, pool: Sequence[int] | None = None) -> list:
    """The protocol steps of a negative pair drawn alongside a positive protocol's ``steps``:
    the same steps, then :class:`tmatch.data.protocols.Negatives` (the template swapped for one
    from another photo of ``pool``). The search image of a negative is thus made exactly like a
    positive's — the network cannot tell them apart by how the image was warped or damaged.

    >>> from tmatch.data.protocols import resolve
    >>> [s.name for s in negative_steps(resolve("homography+photometric")[1])]
    ['homography', 'photometric', 'negatives']
    """
    from tmatch.data.protocols import Negatives

    neg = Negatives(rate=1.0, pool=None if pool is None else IndexPool(int(i) for i in pool))
    return [s for s in steps if not isinstance(s, Negatives)] + [neg]


class PairDataset(torch.utils.data.Dataset):
    """Network-ready pairs drawn from mixed pair sources.

    Args:
        sources: pair sources (:class:`tmatch.data.PairSource`).
        model_config: the network's :class:`tmatch.models.config.ModelConfig` (input sizes,
            normalisation, arch).
        length: pairs per epoch (slots ``0..length-1``).
        indices: for each source, the pair indices allowed (a split); ``None``: all.
        weights: relative share of each source (default equal); sources are drawn per slot.
        protocol: :func:`tmatch.data.make_pair` protocol of the positive pairs: a name
            (``"homography+photometric"``), a protocol object or a list of them.
        wrong_query_rate: probability that a slot is a negative pair.
        seed: seed of all draws.
        target: ``"mask"`` trains on each pair's mask; ``"footprint"`` on the template's warped
            rectangle (``pair.polygon``) whenever the pair has one (cut-outs otherwise give
            object silhouettes).

    Each epoch, every source's allowed indices are shuffled afresh and dealt to that source's
    slots (cycling when the epoch holds more slots than the source has pairs), so an epoch
    covers a small source evenly instead of drawing with replacement. The template of a
    negative comes from another photo among the same allowed indices (so validation templates
    never leak into training negatives), or from the whole source when those hold one photo.
    """

    def __init__(self, sources: Sequence, model_config, length: int,
                 indices: Sequence[Sequence[int]] | None = None,
                 weights: Sequence[float] | None = None, protocol="seed",
                 wrong_query_rate: float = 0.0, seed: int = 0, target: str = "mask") -> None:
        if target not in ("mask", "footprint"):
            raise ValueError(f"target must be 'mask' or 'footprint', got {target!r}")
        self.target = target
        self.sources = list(sources)
        if not self.sources:
            raise DataError("no pair sources given")
        if indices is None:
            indices = [range(len(s)) for s in self.sources]
        if len(indices) != len(self.sources):
            raise ValueError(f"{len(indices)} index lists for {len(self.sources)} sources")
        self.indices = [np.asarray(list(ix), dtype=np.int64) for ix in indices]
        w = np.ones(len(self.sources)) if weights is None else np.asarray(weights, np.float64)
        if len(w) != len(self.sources) or (w < 0).any():
            raise ValueError(f"need one non-negative weight per source, got {list(w)}")
        w = np.where([len(ix) > 0 for ix in self.indices], w, 0.0)
        if w.sum() <= 0:
            raise DataError("none of the pair sources has pairs to draw (empty split?)")
        self.weights = w / w.sum()
        if not 0.0 <= wrong_query_rate <= 1.0:
            raise ValueError(f"wrong_query_rate must be in [0, 1], got {wrong_query_rate}")
        self.model_config = model_config
        self.length = int(length)
        from tmatch.data.protocols import resolve

        self.protocol_name, self.steps = resolve(protocol)
        self.negative_steps = []
        for src, ix in zip(self.sources, self.indices):
            photos = {src.image_key(int(i)) for i in ix[:4096]} if len(ix) else set()
            self.negative_steps.append(negative_steps(self.steps, ix if len(photos) >= 2 else None))
        self.wrong_query_rate = float(wrong_query_rate)
        self.seed = int(seed)
        self._plan: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.length

    # -- which pair sits in a slot -------------------------------------------------------------
    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(source_of_slot, index_of_slot)`` arrays ``(length,)`` of an epoch (cached)."""
        epoch = int(epoch)
        if epoch not in self._plan:
            rng = np.random.default_rng(_seed_of(self.seed, epoch, 0x5EED))
            k = len(self.sources)
            src = (rng.choice(k, size=self.length, p=self.weights) if k > 1
                   else np.zeros(self.length, np.int64))
            idx = np.zeros(self.length, np.int64)
            for s in range(k):
                slots = np.flatnonzero(src == s)
                if len(slots) == 0:
                    continue
                pool = self.indices[s]
                reps = -(-len(slots) // len(pool))
                deal = np.concatenate([rng.permutation(pool) for _ in range(reps)])
                idx[slots] = deal[:len(slots)]
            if len(self._plan) >= 4:
                self._plan.pop(next(iter(self._plan)))
            self._plan[epoch] = (src, idx)
        return self._plan[epoch]

    def describe(self, epoch: int, slot: int) -> tuple[int, int, bool, int]:
        """``(source number, pair index, negative?, pair seed)`` of slot ``slot`` of ``epoch``."""
        if not 0 <= slot < self.length:
            raise IndexError(f"slot {slot} out of range for a dataset of {self.length} pairs")
        src, idx = self.plan(epoch)
        rng = np.random.default_rng(_seed_of(self.seed, epoch, slot, 0xA11))
        neg = bool(rng.random() < self.wrong_query_rate)
        return int(src[slot]), int(idx[slot]), neg, _seed_of(self.seed, epoch, slot)

    def pair(self, epoch: int, slot: int):
        """The :class:`tmatch.data.Pair` of slot ``slot`` of ``epoch``."""
        from tmatch.data import make_pair

        s, i, neg, pair_seed = self.describe(epoch, slot)
        return make_pair(self.sources[s], i, self.negative_steps[s] if neg else self.steps, pair_seed)

    # -- tensors -------------------------------------------------------------------------------
    def to_sample(self, pair, key: tuple[int, int] = (0, 0)) -> Sample:
        """Network tensors of a :class:`tmatch.data.Pair`."""
        from tmatch.models.inputs import prepare_inputs, prepare_target

        inputs = prepare_inputs(self.model_config, pair.template, pair.image)
        target = prepare_target(self.model_config, self.target_mask(pair), inputs)
        return Sample(image=inputs.image.float(), query=inputs.query.float(),
                      target=target.float().reshape(1, *target.shape[-2:]),
                      present=torch.tensor(1.0 if pair.present else 0.0),
                      key=(int(key[0]), int(key[1])))

    def target_mask(self, pair) -> np.ndarray:
        """The ``(H, W)`` bool training target of a pair at the search image's resolution: its
        mask, or its template footprint (``target="footprint"``); empty for a negative."""
        if not pair.present:
            return np.zeros(pair.image.shape[:2], bool)
        if self.target == "footprint" and pair.polygon is not None:
            from tmatch.geometry import mask_from_polygon

            return mask_from_polygon(pair.polygon, pair.image.shape[:2])
        return pair.mask

    def __getitem__(self, key) -> Sample:
        if isinstance(key, (tuple, list)):
            epoch, slot = int(key[0]), int(key[1])
        else:
            epoch, slot = 0, int(key)
        return self.to_sample(self.pair(epoch, slot), (epoch, slot))
