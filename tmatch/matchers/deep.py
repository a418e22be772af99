"""``neural``: template matching by correlating ImageNet features, coarse to fine.

The experiment this project started from trained a dual-encoder U-Net end to end and lost to
SIFT. Ours keeps what a network is good at — features that survive lighting, blur, colour
shifts and moderate warps — and leaves geometry to geometry:

1. **Features.** An ImageNet-trained EfficientNet-Lite0 (:mod:`tmatch.models.features`) gives
   dense features at strides 8, 4 and 2. Each feature vector is centred by the search image's
   channel means and scaled to unit length, so a dot product is a cosine similarity.
2. **Coarse search.** The template is rendered at ``scales`` × ``rotations`` (on a canvas,
   scaled so that its longer side is ``template_side`` network pixels at scale 1); each
   variant's stride-8 feature map (projected on the ``D`` principal directions of the training
   photos' features — the projection is learnt by ``tmatch train --preset neural``), weighted by
   how much of each cell lies inside the template, is a correlation kernel. One convolution per scale scores every position and angle: the mean
   cosine between template cells and image cells. The best (position, scale, angle), with
   sub-cell interpolation, gives a similarity transform.
3. **Refinement.** On the found region, at a finer resolution (``template_side``), the template
   is rendered at the current scale and angle and every template cell, at stride 8, then 4, then
   2, looks for its best match in a small window around where the current transform puts it
   (sub-cell peak); a RANSAC similarity fitted to those correspondences replaces the transform
   when it is well supported (a stage that fails leaves it unchanged). Strides 4 and 2 are
   precise to about a pixel. A final
   *verification* score is the mean cosine between the template's stride-4 cells and the image
   exactly where the transform puts them; when the strongest coarse peak verifies below
   ``sure``, the next peaks are refined too and the best verified one wins.
4. **Presence.** A logistic head (trained by ``tmatch train --preset neural``, shipped in
   ``tmatch/weights/neural.safetensors``) turns match statistics — the coarse peak cosine, its
   contrast to the rest of the map, the refined correspondences' mean cosine and inlier share,
   the verification score and how many refinement stages held — into the probability that the
   template is there; ``found`` needs ``presence_threshold``.

``match_all`` keeps the strongest coarse peaks (non-maximum suppression), refines each and keeps
those the presence head accepts. See ``docs/neural.md`` for the design and measurements.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import CheckpointError, InputError
from tmatch.match import Match
from tmatch.matchers.base import Matcher

#: where trained weights shipped with the package live.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
#: names of the statistics the presence head reads, in order.
STAT_NAMES = ("peak", "contrast", "fine_cos", "inliers", "verify", "stages")
#: the presence model when no weights are installed: a threshold on the verification score.
_UNTRAINED = {"weight": np.array([0.0, 0.0, 0.0, 0.0, 10.0, 0.0]), "bias": -4.5,
              "mean": np.zeros(6), "std": np.ones(6)}
_MAX_SIZES = 16


def default_weights() -> Path:
    """``tmatch/weights/neural.safetensors`` (may not exist)."""
    return WEIGHTS_DIR / "neural.safetensors"


def load_presence(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the trained parts: ``({weight, bias, mean, std[, projection]}, metadata)`` — the
    presence head and the coarse search's feature projection ``(D, 40)``.

    Raises:
        CheckpointError: missing, unreadable or incompatible file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad checkpoint
        raise CheckpointError(f"cannot read weights {path}: {e}") from None
    if meta.get("kind") != "neural-presence":
        raise CheckpointError(f"{path} is not a `neural` presence head (kind={meta.get('kind')!r}); "
                              f"network checkpoints belong to `neural-seg` or `dual-unet`")
    names = json.loads(meta.get("stats", "[]"))
    if tuple(names) != STAT_NAMES:
        raise CheckpointError(f"{path} reads statistics {names}, this version computes {list(STAT_NAMES)}")
    try:
        head = {"weight": tensors["weight"].astype(np.float64).reshape(-1),
                "bias": float(tensors["bias"].reshape(-1)[0]),
                "mean": tensors["mean"].astype(np.float64).reshape(-1),
                "std": tensors["std"].astype(np.float64).reshape(-1)}
    except KeyError as e:
        raise CheckpointError(f"{path} lacks tensor {e}") from None
    if any(len(head[k]) != len(STAT_NAMES) for k in ("weight", "mean", "std")):
        raise CheckpointError(f"{path}: presence head has the wrong size")
    if "projection" in tensors:
        proj = tensors["projection"].astype(np.float32)
        if proj.ndim != 2 or proj.shape[1] != 40 or not 1 <= proj.shape[0] <= 40:
            raise CheckpointError(f"{path}: projection must be (D, 40), got {proj.shape}")
        head["projection"] = proj
    return head, meta


def save_presence(path: str | Path, head: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a presence head (see :func:`load_presence`) atomically."""
    import os

    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"weight": np.asarray(head["weight"], np.float32).reshape(-1),
               "bias": np.asarray([head["bias"]], np.float32),
               "mean": np.asarray(head["mean"], np.float32).reshape(-1),
               "std": np.asarray(head["std"], np.float32).reshape(-1)}
    if head.get("projection") is not None:
        tensors["projection"] = np.ascontiguousarray(head["projection"], np.float32)
    info = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in meta.items()}
    info.update(kind="neural-presence", stats=json.dumps(list(STAT_NAMES)))
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=info)
    os.replace(tmp, path)
    return path


def presence_probability(head: dict[str, Any], stats: np.ndarray) -> np.ndarray:
    """``(N, len(STAT_NAMES))`` statistics → ``(N,)`` probabilities."""
    z = (np.asarray(stats, np.float64) - head["mean"]) / head["std"]
    return 1.0 / (1.0 + np.exp(-np.clip(z @ head["weight"] + head["bias"], -60, 60)))


def _unit(f: np.ndarray, mean: np.ndarray, proj: np.ndarray | None = None) -> np.ndarray:
    """Centre ``(C, h, w)`` features by ``mean`` ``(C, 1, 1)``, project by ``proj`` ``(D, C)``
    when given, and scale each vector to unit length."""
    g = f - mean
    if proj is not None:
        g = np.einsum("dc,chw->dhw", proj, g)
    return g / (np.sqrt((g * g).sum(axis=0, keepdims=True)) + 1e-6)


@dataclass
class _Variant:
    scale: float
    angle: float
    side: int  # canvas side, network px (multiple of 8)
    affine: np.ndarray  # (2, 3) template centre-coords -> canvas centre-coords
    feats: list[np.ndarray]  # raw canvas features at strides 2, 4, 8: (C, side/s, side/s)
    valid: list[np.ndarray]  # share of each cell inside the template, per stride


@dataclass
class _Encoded:
    r: float  # network px per image px
    variants: list[_Variant]


@dataclass
class _Prepared:
    template: np.ndarray
    by_r: dict[float, _Encoded] = field(default_factory=dict)
    fine: dict[tuple, _Variant] = field(default_factory=dict)


@dataclass
class _Candidate:
    hm: np.ndarray
    stats: np.ndarray
    variant: _Variant
    refined: int  # refinement stages accepted (0, 1 or 2)


class DeepCorrelationMatcher(Matcher):
    """Ours: ImageNet-feature correlation over scales and rotations, refined at strides 4 and 2,
    with a trained presence head.

    Args:
        weights: presence head (``.safetensors`` from ``tmatch train --preset neural``);
            ``None`` uses the file shipped with tmatch.
        runtime: ``"auto"`` (ONNX on CPU), ``"onnx"`` or ``"torch"`` for the feature network.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: CPU threads (``None``: the runtime's default).
        scales: template scales searched (image px per template px).
        rotations: template rotations searched, degrees (clockwise on screen).
        coarse_side: network pixels of the template's longer side at scale 1 in the coarse
            search (the image is resized by the same factor); larger is surer and slower.
        template_side: the same for the refinement, which sees only the found region.
        max_side: the search image's longer side is never resized above this (network px).
        max_upscale: largest resize factor of the image (small templates).
        presence_threshold: presence probability under which the template is reported absent.
        refine: run the refinements (strides 8, 4, 2).
        candidates: coarse peaks refined when the strongest one is not verified.
        sure: verification score (mean stride-4 cosine at the final geometry) above which the
            strongest peak is taken without refining others.
        allow_untrained: with no weights installed, use all 40 feature channels and a fixed
            threshold on the verification score instead of raising.

    >>> import numpy as np, tmatch
    >>> from skimage import data
    >>> img = data.astronaut()
    >>> m = tmatch.load_matcher("neural", runtime="torch")
    >>> r = m.match(img[100:220, 150:260], img)
    >>> r.found, [round(v / 10) * 10 for v in r.box]
    (True, [150, 100, 110, 120])
    """

    name = "neural"
    description = "ours: ImageNet-feature correlation over scales/rotations, refined, trained presence"
    multi_instance = True

    def __init__(self, weights: str | Path | None = None, runtime: str = "auto", device: str = "auto",
                 threads: int | None = None,
                 scales: Sequence[float] = (0.7, 0.84, 1.0, 1.19, 1.41),
                 rotations: Sequence[float] = (-20.0, 0.0, 20.0),
                 coarse_side: int = 56, template_side: int = 80, max_side: int = 1024,
                 max_upscale: float = 2.0,
                 presence_threshold: float = 0.5, refine: bool = True, candidates: int = 3,
                 sure: float = 0.65, allow_untrained: bool = False):
        from tmatch.matchers.neural import search_grid
        from tmatch.models.features import Lite0Features

        scales, rotations = search_grid(scales, rotations)
        if not 16 <= int(coarse_side) <= 512:
            raise InputError(f"coarse_side must be in [16, 512], got {coarse_side}")
        if not 16 <= int(template_side) <= 512:
            raise InputError(f"template_side must be in [16, 512], got {template_side}")
        if not 64 <= int(max_side) <= 4096:
            raise InputError(f"max_side must be in [64, 4096], got {max_side}")
        if not 0.1 <= float(max_upscale) <= 8:
            raise InputError(f"max_upscale must be in [0.1, 8], got {max_upscale}")
        if not 0.0 <= float(presence_threshold) <= 1.0:
            raise InputError(f"presence_threshold must be in [0, 1], got {presence_threshold}")
        if threads is not None and int(threads) < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        self.scales, self.rotations = scales, rotations
        self.coarse_side, self.template_side, self.max_side = int(coarse_side), int(template_side), int(max_side)
        self.max_upscale = float(max_upscale)
        self.presence_threshold = float(presence_threshold)
        self.refine = bool(refine)
        if not 1 <= int(candidates) <= 50:
            raise InputError(f"candidates must be in [1, 50], got {candidates}")
        self.candidates, self.sure = int(candidates), float(sure)
        self.distinct = 0.05  # least (best - median) cosine of a cell's window to use the cell
        self.render_step = (0.01, 1.0)  # refinement re-renders: log-scale and angle grid
        self._rerender = 2  # stages that render the template afresh
        self.doubt = 0.3  # verification under which other peaks are not tried (clearly absent)
        self.threads = None if threads is None else int(threads)
        path = Path(weights) if weights is not None else default_weights()
        if weights is None and not path.is_file():
            if not allow_untrained:
                raise CheckpointError(
                    f"no presence head is installed for 'neural' (looked for {path}); pass "
                    f"weights=PATH from `tmatch train --preset neural`, or allow_untrained=True")
            self._head, self._meta, self.weights = dict(_UNTRAINED), {"untrained": True}, None
        else:
            self._head, self._meta = load_presence(path)
            self.weights = str(path)
        self._features = Lite0Features(runtime=runtime, device=device, threads=self.threads)
        self.runtime, self.device = self._features.runtime, self._features.device
        self._proj = self._head.get("projection")
        self._stages = ((2, 2), (1, 2), (0, 2))

    @property
    def meta(self) -> dict[str, Any]:
        """The presence head's metadata (data, recipe, metrics)."""
        return dict(self._meta)

    # ------------------------------------------------------------------ template
    def prepare(self, template: np.ndarray) -> _Prepared:
        """Template variants are rendered and encoded on first use for each resize factor."""
        return _Prepared(template=template)

    def _factor(self, template_hw: tuple[int, int], image_hw: tuple[int, int], side: int) -> float:
        """Network pixels per image pixel: the template's longer side becomes ``side`` (its
        shorter side at least ``side / 3.5``: a thin template keeps two stride-8 cells across),
        within ``max_side`` for the image and ``max_upscale``."""
        (h, w), (H, W) = template_hw, image_hw
        r = max(side / max(h, w), side / 3.5 / min(h, w))
        r = min(r, self.max_side / max(H, W), self.max_upscale)
        return float(max(r, 8.0 / min(H, W)))  # at least one stride-8 cell across

    def _encoded(self, prepared: _Prepared, r: float) -> _Encoded:
        key = round(r, 6)
        if key not in prepared.by_r:
            if len(prepared.by_r) >= _MAX_SIZES:
                prepared.by_r.pop(next(iter(prepared.by_r)))
            prepared.by_r[key] = self._encode(prepared.template, r)
        return prepared.by_r[key]

    def _encode(self, template: np.ndarray, r: float) -> _Encoded:
        variants: list[_Variant] = []
        for sc in self.scales:
            variants += self._render(template, r, sc, self.rotations)
        return _Encoded(r, variants)

    def _render(self, template: np.ndarray, r: float, scale: float, angles: Sequence[float]) -> list[_Variant]:
        """The template at ``scale`` and each of ``angles`` on square canvases (network factor
        ``r``), encoded in one batch."""
        from tmatch.models.features import normalize

        h, w = template.shape[:2]
        ones = np.ones((h, w), np.float32)
        f = r * scale
        # A canvas holding the rotated template (its bounding box at the largest angle), on
        # whole stride-8 cells.
        amax = max(min(abs(a) % 180.0, 180.0 - abs(a) % 180.0) for a in angles)
        ca, sa = abs(math.cos(math.radians(amax))), abs(math.sin(math.radians(amax)))
        ext = max(w * ca + h * sa, w * sa + h * ca) if amax <= 45 else math.hypot(h, w)
        side = max(16, math.ceil((ext * f + 8) / 8.0) * 8)
        canvases, group = [], []
        for a in angles:
            A = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), -a, f)
            A[:, 2] += (side - 1) / 2.0 - np.array([(w - 1) / 2.0, (h - 1) / 2.0])
            interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
            can = cv2.warpAffine(template, A, (side, side), flags=interp, borderMode=cv2.BORDER_REFLECT101)
            val = cv2.warpAffine(ones, A, (side, side), flags=cv2.INTER_LINEAR)
            canvases.append(normalize(can))
            group.append((a, A, val))
        feats = self._features(np.stack(canvases))
        out = []
        for k, (a, A, val) in enumerate(group):
            valid = [cv2.resize(val, (side // s, side // s), interpolation=cv2.INTER_AREA) for s in (2, 4, 8)]
            out.append(_Variant(scale, a, side, A, [fm[k] for fm in feats], valid))
        return out

    # -------------------------------------------------------------------- search
    def _image_features(self, image: np.ndarray, r: float, project: bool = False
                        ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Unit features of ``image`` resized by ``r``, the channel means they were centred by,
        and the exact resize factors ``(rx, ry)`` (sizes are whole pixels)."""
        from tmatch.models.features import normalize

        H, W = image.shape[:2]
        nw, nh = max(8, round(W * r)), max(8, round(H * r))
        interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
        im = cv2.resize(image, (nw, nh), interpolation=interp) if (nw, nh) != (W, H) else image
        feats = [f[0] for f in self._features(normalize(im)[None])]
        means = [f.mean(axis=(1, 2), keepdims=True) for f in feats]
        proj = self._proj if project else None
        units = [_unit(f, m, proj if i == 2 else None) for i, (f, m) in enumerate(zip(feats, means))]
        return units, means, np.array([nw / W, nh / H])

    def _coarse(self, enc: _Encoded, f8: np.ndarray, mean8: np.ndarray) -> np.ndarray:
        """Scores ``(V, h8, w8)``: mean cosine of every variant at every stride-8 position (the
        canvas centre lands on the cell's centre)."""
        import torch
        import torch.nn.functional as F

        from tmatch.models.runtime import torch_threads

        x = torch.from_numpy(f8)[None]
        by_side: dict[int, list[int]] = {}
        for i, v in enumerate(enc.variants):
            by_side.setdefault(v.side, []).append(i)
        scores = np.zeros((len(enc.variants),) + f8.shape[1:], np.float32)
        with torch.no_grad(), torch_threads(self.threads):
            for idx in by_side.values():
                ks = []
                for i in idx:
                    v = enc.variants[i]
                    wgt = np.where(v.valid[2] >= 0.5, v.valid[2], 0.0).astype(np.float32)
                    k = _unit(v.feats[2], mean8, self._proj) * wgt[None]
                    ks.append(k / max(float(wgt.sum()), 1e-6))
                k = torch.from_numpy(np.stack(ks))
                n = k.shape[-1]
                lo, hi = n // 2, n - 1 - n // 2
                out = F.conv2d(F.pad(x, (lo, hi, lo, hi)), k)[0].numpy()
                scores[idx] = out
        return scores

    def _similarity(self, v: _Variant, r: float, cy: float, cx: float) -> np.ndarray:
        """Template → image homography of variant ``v`` whose canvas has its top-left cell at
        stride-8 cell ``(cy, cx)`` (fractional)."""
        n = v.side // 8
        lo = n // 2
        # canvas centre-coords origin ↔ image-net centre-coords 8 * (cell - lo)
        ox, oy = 8.0 * (cx - lo), 8.0 * (cy - lo)
        A = np.vstack([v.affine, [0, 0, 1]])
        T = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1.0]])
        return _edge_map(T @ A, r)

    def _refine(self, hm: np.ndarray, v: _Variant, r: np.ndarray, origin: tuple[float, float], level: int,
                fimg: np.ndarray, mean: np.ndarray, template_hw: tuple[int, int], radius: int,
                max_cells: int = 600) -> tuple[np.ndarray | None, float, float]:
        """One refinement at stride ``(2, 4)[level]`` on features ``fimg`` of the image region
        whose top-left corner is ``origin`` (image px), resized by ``r = (rx, ry)``: ``(new homography or
        None, mean cosine of the cells' best matches, inlier share)``."""
        s = (2, 4, 8)[level]
        wgt = v.valid[level]
        ii, jj = np.nonzero(wgt >= 0.75)
        if len(ii) < 8:
            return None, 0.0, 0.0
        if len(ii) > max_cells:
            pick = np.linspace(0, len(ii) - 1, max_cells).round().astype(int)
            ii, jj = ii[pick], jj[pick]
        t = _unit(v.feats[level], mean)[:, ii, jj]  # (C, N)
        tp, ip = _cell_positions(v, s, ii, jj, hm, r, origin)
        ci, cj = np.round(ip[:, 1] / s).astype(int), np.round(ip[:, 0] / s).astype(int)
        _, Hf, Wf = fimg.shape
        P = radius
        fp = np.pad(fimg, ((0, 0), (P, P), (P, P)))
        ok = (ci >= -P + radius) & (ci < Hf + P - radius) & (cj >= -P + radius) & (cj < Wf + P - radius)
        ok &= (ci >= 0) & (ci < Hf) & (cj >= 0) & (cj < Wf)
        if ok.sum() < 8:
            return None, 0.0, 0.0
        t, tp, ci, cj = t[:, ok], tp[ok], ci[ok], cj[ok]
        d = np.arange(-radius, radius + 1)
        Y = ci[:, None, None] + P + d[None, :, None]
        X = cj[:, None, None] + P + d[None, None, :]
        win = fp[:, Y, X]  # (C, N, k, k)
        sim = np.einsum("cn,cnyx->nyx", t, win)
        k = 2 * radius + 1
        flat = sim.reshape(len(ci), -1)
        best = flat.argmax(axis=1)
        by, bx = best // k, best % k
        peak = flat[np.arange(len(ci)), best]
        dy = _subcell(sim, by, bx, axis=1)
        dx = _subcell(sim, by, bx, axis=2)
        iy = ci - radius + by + dy
        ix = cj - radius + bx + dx
        dst = np.stack([(ix * s + 0.5) / r[0] + origin[0], (iy * s + 0.5) / r[1] + origin[1]], axis=1)
        # Cells whose best match stands out of their window (not flat sky or a blank wall, whose
        # "best" match is arbitrary) and is a reasonable match at all.
        contrast = peak - np.median(flat, axis=1)
        good = (peak >= 0.3) & (contrast >= self.distinct)
        fine_cos = float(peak.mean())
        if good.sum() < 8:
            return None, fine_cos, 0.0
        A, inl = cv2.estimateAffinePartial2D(tp[good].astype(np.float32), dst[good].astype(np.float32),
                                             method=cv2.RANSAC, ransacReprojThreshold=0.75 * s / float(np.mean(r)),
                                             maxIters=500, refineIters=10)
        share = 0.0 if inl is None else float(inl.sum()) / len(ci)
        if A is None or inl.sum() < max(8, 0.3 * good.sum()):
            return None, fine_cos, share
        new = np.vstack([A, [0, 0, 1.0]])
        if not geometry.plausible_homography(new, template_hw, (10**6, 10**6)):
            return None, fine_cos, share
        return new, fine_cos, share

    def _coarse_search(self, prepared: _Prepared, image: np.ndarray) -> dict[str, Any]:
        th, tw = prepared.template.shape[:2]
        r = self._factor((th, tw), image.shape[:2], self.coarse_side)
        enc = self._encoded(prepared, r)
        feats, means, _ = self._image_features(image, r, project=True)
        scores = self._coarse(enc, feats[2], means[2])
        best = scores.max(axis=0)
        return {"r": r, "enc": enc, "scores": scores, "best_v": scores.argmax(axis=0), "best": best,
                "med": float(np.median(best)), "spread": float(best.std()) + 1e-6}

    def _candidate(self, prepared: _Prepared, image: np.ndarray, co: dict[str, Any], y: int, x: int,
                   vi: int | None = None) -> _Candidate:
        """The coarse peak at stride-8 cell ``(y, x)`` (of variant ``vi``, by default the best
        there), refined, with its statistics."""
        vi = int(co["best_v"][y, x]) if vi is None else int(vi)
        v = co["enc"].variants[vi]
        m = co["scores"][vi]
        cy = y + _subcell1(m[:, x], y)
        cx = x + _subcell1(m[y, :], x)
        hm = self._similarity(v, co["r"], cy, cx)
        peak = float(co["scores"][vi, y, x])
        refined, fine_cos, share, verify = 0, 0.0, 0.0, 0.0
        if self.refine:
            hm, refined, fine_cos, share, verify = self._fine(prepared, image, hm, co["r"])
        stats = np.array([peak, (peak - co["med"]) / co["spread"], fine_cos, share, verify,
                          refined / max(1, len(self._stages))])
        return _Candidate(hm, stats, v, refined)

    def _best(self, prepared: _Prepared, image: np.ndarray) -> _Candidate:
        """The best candidate: the strongest coarse peak, unless its refined verification is below
        ``sure``; then the strongest peak's best variant of another scale and the next peaks (up
        to ``candidates`` in all) are refined too, and the best verified one wins."""
        co = self._coarse_search(prepared, image)
        cells = _peaks(co["best"], self.candidates)
        first = self._candidate(prepared, image, co, *cells[0])
        if not self.doubt <= first.stats[4] < self.sure or self.candidates == 1:
            return first
        y, x = cells[0]
        variants = co["enc"].variants
        other_scale = [i for i in np.argsort(-co["scores"][:, y, x])
                       if variants[i].scale != first.variant.scale]
        tries = [(y, x, other_scale[0])] if other_scale else []
        tries += [(cy, cx, None) for cy, cx in cells[1:]]
        others = [self._candidate(prepared, image, co, *t) for t in tries[: self.candidates - 1]]
        return max([first] + others, key=lambda c: c.stats[4])

    def _candidates(self, prepared: _Prepared, image: np.ndarray, peaks: int) -> list[_Candidate]:
        co = self._coarse_search(prepared, image)
        return [self._candidate(prepared, image, co, y, x) for y, x in _peaks(co["best"], peaks)]

    def _fine(self, prepared: _Prepared, image: np.ndarray, hm: np.ndarray, r_coarse: float
              ) -> tuple[np.ndarray, int, float, float, float]:
        """Refine ``hm`` at strides 8, 4 and 2 on the region around it, at the finer factor
        (``template_side``); before the first two stages the template is rendered afresh at the
        current scale and angle, since low-level features are not invariant to them.

        Returns:
            ``(homography, stages accepted, mean cosine and inlier share of the stride-4 stage,
            verification score of the final geometry)``.
        """
        th, tw = prepared.template.shape[:2]
        H, W = image.shape[:2]
        # The region is small: the template may be upscaled further than in the coarse search.
        rf = max(min(max(self.template_side / max(th, tw), self.template_side / 3.5 / min(th, tw)),
                     2.0 * self.max_upscale), r_coarse)
        poly = geometry.template_polygon(hm, (th, tw))
        (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
        pad = 0.2 * max(x1 - x0, y1 - y0) + 16.0 / r_coarse
        x0, y0 = int(max(0, math.floor(x0 - pad))), int(max(0, math.floor(y0 - pad)))
        x1, y1 = int(min(W, math.ceil(x1 + pad))), int(min(H, math.ceil(y1 + pad)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return hm, 0, 0.0, 0.0, 0.0
        feats, means, rxy = self._image_features(image[y0:y1, x0:x1], rf)
        origin = (float(x0), float(y0))
        done, fine_cos, share = 0, 0.0, 0.0
        fv = None
        for k, (level, radius) in enumerate(self._stages):
            if k < self._rerender:  # the first stages correct scale and angle most; later ones reuse it
                fv = self._fine_variant(prepared, rf, *similarity_params(hm))
            new, cos_, share_ = self._refine(hm, fv, rxy, origin, level, feats[level], means[level], (th, tw),
                                             radius=radius)
            if level == 1:
                fine_cos, share = cos_, share_
            if new is not None:  # a failed stage keeps the transform; the next, finer one may hold
                hm, done = new, done + 1
        verify = self._verify(hm, fv, rxy, origin, feats[1], means[1])
        return hm, done, fine_cos, share, verify

    def _verify(self, hm: np.ndarray, v: _Variant, r: np.ndarray, origin: tuple[float, float],
                fimg: np.ndarray, mean: np.ndarray) -> float:
        """Mean cosine between the template's stride-4 cells and the image features exactly where
        ``hm`` puts them (bilinear), cells falling outside counting 0: how well the final
        geometry explains the image."""
        s = 4
        ii, jj = np.nonzero(v.valid[1] >= 0.75)
        if len(ii) == 0:
            return 0.0
        t = _unit(v.feats[1], mean)[:, ii, jj]
        _, ip = _cell_positions(v, s, ii, jj, hm, r, origin)
        fx, fy = ip[:, 0] / s, ip[:, 1] / s
        _, Hf, Wf = fimg.shape
        inside = (fx >= 0) & (fy >= 0) & (fx <= Wf - 1) & (fy <= Hf - 1)
        x0 = np.clip(np.floor(fx).astype(int), 0, max(0, Wf - 2))
        y0 = np.clip(np.floor(fy).astype(int), 0, max(0, Hf - 2))
        ax, ay = np.clip(fx - x0, 0, 1), np.clip(fy - y0, 0, 1)
        x1, y1 = np.minimum(x0 + 1, Wf - 1), np.minimum(y0 + 1, Hf - 1)
        f = (fimg[:, y0, x0] * ((1 - ax) * (1 - ay)) + fimg[:, y0, x1] * (ax * (1 - ay))
             + fimg[:, y1, x0] * ((1 - ax) * ay) + fimg[:, y1, x1] * (ax * ay))
        f = f / (np.linalg.norm(f, axis=0, keepdims=True) + 1e-6)
        cos = np.where(inside, (t * f).sum(axis=0), 0.0)
        return float(cos.mean())

    def _fine_variant(self, prepared: _Prepared, rf: float, scale: float, angle: float) -> _Variant:
        """The template rendered at ``scale`` and ``angle`` for factor ``rf``, both rounded to a
        grid (``self.render_step``: 2% and 2°, which low-level features barely notice) so that
        the stages and the verification mostly share one rendering."""
        ds, da = self.render_step
        scale = float(np.clip(math.exp(round(math.log(scale) / ds) * ds), 0.05, 20.0))
        angle = float(round(angle / da) * da)
        key = (round(rf, 6), scale, angle)
        fv = prepared.fine.get(key)
        if fv is None:
            if len(prepared.fine) >= 4 * _MAX_SIZES:
                prepared.fine.pop(next(iter(prepared.fine)))
            fv = prepared.fine[key] = self._render(prepared.template, rf, scale, [angle])[0]
        return fv

    def _to_match(self, c: _Candidate, p: float, template_hw: tuple[int, int],
                  image_hw: tuple[int, int]) -> Match:
        scale, angle = similarity_params(c.hm)
        extra = dict(presence=round(float(p), 4), peak=round(float(c.stats[0]), 4), scale=round(scale, 4),
                     angle=round(angle, 2), refined=c.refined)
        return self._from_homography(c.hm, template_hw, image_hw, float(p), **extra)

    def _match(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray) -> Match:
        c = self._best(prepared, image)
        p = float(presence_probability(self._head, c.stats[None])[0])
        if p < self.presence_threshold or not geometry.plausible_homography(c.hm, template.shape[:2], image.shape[:2]):
            return Match.absent(image.shape[:2], score=p, method=self.name, presence=round(p, 4),
                                peak=round(float(c.stats[0]), 4))
        return self._to_match(c, p, template.shape[:2], image.shape[:2])

    def statistics(self, template: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(stats (4,), homography)`` of the best candidate — what the presence head reads
        (used to train it)."""
        c = self._best(self.prepare(template), image)
        return c.stats, c.hm

    def _match_all(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        cands = self._candidates(prepared, image, max(1, max_instances) * 3)
        ps = presence_probability(self._head, np.stack([c.stats for c in cands]))
        floor = self.presence_threshold if min_score is None else max(self.presence_threshold, min_score)
        ms = [self._to_match(c, p, template.shape[:2], image.shape[:2]) for c, p in zip(cands, ps)
              if p >= floor and geometry.plausible_homography(c.hm, template.shape[:2], image.shape[:2])]
        keep = geometry.nms([m.polygon for m in ms], [m.score for m in ms], iou_threshold=0.3)
        return [ms[i] for i in keep[:max_instances]]



def _cell_positions(v: _Variant, s: int, ii: np.ndarray, jj: np.ndarray, hm: np.ndarray, r: np.ndarray,
                    origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where the stride-``s`` canvas cells ``(ii, jj)`` of variant ``v`` are: ``(template edge
    coords (N, 2), centre coords in the network frame of the region at ``origin`` resized by
    ``r = (rx, ry)`` where ``hm`` puts them (N, 2))``."""
    a_inv = cv2.invertAffineTransform(v.affine)
    pts = np.stack([jj * s, ii * s], axis=1).astype(np.float64)  # canvas cell centres (centre coords)
    tp = pts @ a_inv[:, :2].T + a_inv[:, 2] + 0.5
    ip = (geometry.project(hm, tp) - np.asarray(origin)) * r - 0.5
    return tp, ip


def similarity_params(hm: np.ndarray) -> tuple[float, float]:
    """``(scale, angle in degrees)`` of the linear part of a (near-)similarity homography."""
    a, b = float(hm[0, 0] + hm[1, 1]) / 2.0, float(hm[1, 0] - hm[0, 1]) / 2.0
    return math.hypot(a, b) / max(float(hm[2, 2]), 1e-12), math.degrees(math.atan2(b, a))


def _edge_map(A_centre_net: np.ndarray, r: float) -> np.ndarray:
    """A template centre-coords → image-net centre-coords map as a template edge-coords → image
    edge-coords homography (image px = net px / r)."""
    to_c = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])
    from_net = np.array([[1 / r, 0, 0.5 / r], [0, 1 / r, 0.5 / r], [0, 0, 1.0]])
    return from_net @ A_centre_net @ to_c


def _subcell(sim: np.ndarray, by: np.ndarray, bx: np.ndarray, axis: int) -> np.ndarray:
    """Parabolic sub-cell offset of each window's peak along ``axis`` (1: y, 2: x)."""
    n, k = sim.shape[0], sim.shape[1]
    idx = np.arange(n)
    pos = by if axis == 1 else bx
    inner = (pos > 0) & (pos < k - 1)
    lo, hi = np.clip(pos - 1, 0, k - 1), np.clip(pos + 1, 0, k - 1)
    if axis == 1:
        c0, cm, cp = sim[idx, pos, bx], sim[idx, lo, bx], sim[idx, hi, bx]
    else:
        c0, cm, cp = sim[idx, by, pos], sim[idx, by, lo], sim[idx, by, hi]
    den = cm - 2 * c0 + cp
    off = np.where(den < 0, 0.5 * (cm - cp) / np.where(den < 0, den, -1.0), 0.0)
    return np.where(inner, np.clip(off, -0.5, 0.5), 0.0)


def _subcell1(line: np.ndarray, i: int) -> float:
    if 0 < i < len(line) - 1:
        cm, c0, cp = float(line[i - 1]), float(line[i]), float(line[i + 1])
        den = cm - 2 * c0 + cp
        if den < 0:
            return float(np.clip(0.5 * (cm - cp) / den, -0.5, 0.5))
    return 0.0


def _peaks(score: np.ndarray, n: int) -> list[tuple[int, int]]:
    """The ``n`` strongest local maxima (3×3) of ``score``, strongest first."""
    if n <= 1:
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        return [(int(y), int(x))]
    dil = cv2.dilate(score.astype(np.float32), np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(score >= dil)
    order = np.argsort(-score[ys, xs])[:n]
    return [(int(ys[i]), int(xs[i])) for i in order]
