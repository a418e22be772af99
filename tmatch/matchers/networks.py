"""The network matchers: ``dual-unet`` (the original network) and ``neural-seg`` (a Siamese
correlation network trained end to end). Both are segmenters: the network predicts a mask.

Both load a safetensors checkpoint (``weights=PATH``; default: the file shipped in
``tmatch/weights/<name>.safetensors``), encode the template once per search-image size in
:meth:`prepare` (a video encodes its template once), run the search branch in batches, and
turn the predicted mask into a :class:`~tmatch.match.Match`: the mask itself, a polygon (the
template rectangle fitted to the mask's minimum-area rectangle — with a homography when its
aspect agrees with the template's — or the bare rectangle otherwise) and the box.

Runtimes: ``runtime="onnx"`` runs two exported onnxruntime graphs (template → encoding,
search + encoding → mask & presence), exported once and cached per weights file
(:mod:`tmatch.models.export`); ``runtime="torch"`` runs PyTorch (GPU, training). ``"auto"``
picks torch on CUDA and ONNX on CPU (torch for an untrained model, which has no file to key
the cache on).

Scores: ``neural-seg`` — presence probability × mean mask probability over the reported mask
(``found`` needs presence ≥ ``presence_threshold``); ``dual-unet`` — mean mask probability over
the reported mask (the original had no presence output: an empty mask means absent).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from tmatch import geometry
from tmatch.errors import CheckpointError
from tmatch.match import Match
from tmatch.matchers.base import Matcher
from tmatch.matchers.options import RUNTIME_OPTIONS, Option, check_grid, work_options
from tmatch.models.weights import resolve_weights

#: template encodings kept per prepared template (one per search-image size).
_MAX_SIZES = 16


@dataclass
class _Encoded:
    """The template encoded for one search-image size."""

    encoding: Any
    variants: list[tuple[float, float]]  # (pyramid scale, angle in degrees) per variant
    template_scale: float  # network pixels per template pixel at pyramid scale 1


@dataclass
class _Prepared:
    template: np.ndarray
    by_size: dict[tuple[int, int], _Encoded] = field(default_factory=dict)


@dataclass
class _Geometry:
    """Where an image sits in the network input (what ``mask_to_image`` needs)."""

    image_hw: tuple[int, int]
    content_hw: tuple[int, int]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def fit_template_polygon(component: np.ndarray, template_hw: tuple[int, int], angle_hint: float = 0.0,
                         scale_hint: float | None = None, max_aspect_error: float = 0.3,
                         min_fill: float = 0.85) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit the template rectangle to one mask blob.

    *Rectangle-like blob* (it fills at least ``min_fill`` of its minimum-area rectangle, whose
    side ratio matches the template's within ``|log(sx / sy)| <= max_aspect_error``): of the
    rectangle's four cyclic corner orderings, the one whose rotation is closest to ``angle_hint``
    becomes the template's TL, TR, BR, BL, and the template-to-image homography (affine) is
    returned with it.

    *Any other blob* (an object's silhouette inside the template, a partial mask): the template
    rectangle is placed by a similarity — centred on the blob's centroid, rotated by
    ``angle_hint``, scaled so that its area equals the blob's (kept within 1.5× of
    ``scale_hint`` when given) — and no homography is claimed.

    Args:
        component: ``(H, W)`` bool mask of one blob.
        template_hw: ``(h, w)`` of the template.
        angle_hint: expected rotation of the template in the image, degrees.
        scale_hint: expected image pixels per template pixel, or ``None``.

    Returns:
        ``(polygon (4, 2), homography (3, 3) or None)``.
    """
    m = np.asarray(component, np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    c = max(contours, key=cv2.contourArea)
    (cx, cy), (rw, rh), ang = cv2.minAreaRect(c.astype(np.float32) + 0.5)
    rect = ((cx, cy), (rw + 1.0, rh + 1.0), ang)  # the contour runs through pixel centres
    corners = geometry.order_corners(cv2.boxPoints(rect).astype(np.float64))
    h, w = template_hw
    src = geometry.rect_polygon(0, 0, w, h)
    best = None
    for k in range(4):
        p = np.roll(corners, -k, axis=0)
        ex, ey = p[1] - p[0], p[3] - p[0]
        sx, sy = np.hypot(*ex) / w, np.hypot(*ey) / h
        if sx <= 0 or sy <= 0:
            continue
        aspect = abs(math.log(sx / sy))
        a = math.degrees(math.atan2(ex[1], ex[0]))
        dang = abs((a - angle_hint + 180.0) % 360.0 - 180.0)
        cost = dang / 90.0 + aspect
        if best is None or cost < best[0]:
            best = (cost, p, aspect)
    area = float(m.sum())
    rect_area = float((rw + 1.0) * (rh + 1.0))
    fill = area / rect_area if rect_area > 0 else 0.0
    if best is not None and best[2] <= max_aspect_error and fill >= min_fill:
        poly = best[1]
        hm = cv2.getPerspectiveTransform(src.astype(np.float32), poly.astype(np.float32)).astype(np.float64)
        return poly, hm
    ys, xs = np.nonzero(m)
    centre = (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)
    scale = math.sqrt(area / float(h * w))
    if scale_hint is not None and scale_hint > 0:
        scale = min(max(scale, scale_hint / 1.5), scale_hint * 1.5)
    a = math.radians(angle_hint)
    co, si = math.cos(a) * scale, math.sin(a) * scale
    sim = np.array([[co, -si, centre[0]], [si, co, centre[1]], [0, 0, 1]]) @ \
        np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    return geometry.template_polygon(sim, template_hw), None


class NetworkMatcher(Matcher):
    """What both neural matchers share: loading, runtimes, batching and mask → Match.

    Args:
        weights: a ``.safetensors`` checkpoint; ``None`` uses the weights shipped with tmatch.
        runtime: ``"auto"``, ``"torch"`` or ``"onnx"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: CPU threads for inference (``None``: the runtime's default).
        threshold: mask probability above which a pixel belongs to the template.
        batch_size: images per forward pass in ``match_many``.
        min_area: smallest blob kept, in image pixels.
        allow_untrained: when no weights are installed, build an untrained network instead of
            raising (tests, experiments).
    """

    arch: ClassVar[str] = ""
    multi_instance = True

    compute = "torch"
    OPTIONS = (
        Option("weights", Path, None, "a .safetensors checkpoint (default: the one shipped)", optional=True),
        *RUNTIME_OPTIONS,
        Option("threshold", float, 0.5, "mask probability above which a pixel belongs to the template",
               low=1e-9, high=1 - 1e-9),
        Option("batch_size", int, 32, "images per forward pass in match_many", low=1, high=1024),
        Option("min_area", int, 16, "smallest blob kept, image pixels", low=0, high=10**8),
        Option("allow_untrained", bool, False, "build an untrained network when no weights are installed"),
        *work_options(4096),
    )

    def __init__(self, **options: Any):
        from tmatch.models.checkpoint import load_checkpoint
        from tmatch.models.config import ModelConfig
        from tmatch.models.runtime import resolve_device

        super().__init__(**options)
        if "scales" in self.option_table():
            check_grid(self.scales, self.rotations, self.name)
        runtime, device = resolve_device(self.runtime, self.device)
        path = resolve_weights(self.weights, self.name, self.allow_untrained, "a checkpoint from `tmatch train`")
        if path is None:
            self._model = None
            self._config = ModelConfig(arch=self.arch)
            self._meta: dict[str, Any] = {"untrained": True}
            self._weights_path: Path | None = None
        else:
            self._model, self._config, self._meta = load_checkpoint(path)
            self._weights_path = path
            if self._config.arch != self.arch:
                raise CheckpointError(f"{path} holds a {self._config.arch!r} model, not {self.arch!r}; "
                                      f"use --method {self._config.arch}")
        if self._model is None:
            from tmatch.models import build_model

            self._model = build_model(self._config).eval()
        self.weights = None if self._weights_path is None else str(self._weights_path)
        self.device = device
        if runtime == "auto":
            runtime = "onnx" if self.device == "cpu" and self._weights_path is not None else "torch"
        self.runtime = runtime
        self._runner: Any = None

    # ----------------------------------------------------------------- access
    @property
    def config(self):
        """The :class:`~tmatch.models.config.ModelConfig` of the loaded network."""
        return self._config

    @property
    def model(self):
        """The torch network (eval mode)."""
        return self._model

    @property
    def meta(self) -> dict[str, Any]:
        """The checkpoint's metadata (data, metrics, recipe)."""
        return dict(self._meta)

    def set_runner(self, runner: Any) -> None:
        """Run inference with ``runner`` instead of the built-in torch/ONNX one: an object with
        ``encode(query (K, 3, T, T)) -> encoding`` and ``search(images (B, 3, S, S), encoding)
        -> {"mask", "presence", "variant", "presences"}`` (another backend, or a test oracle)."""
        self._runner = runner

    def runner(self):
        """The runtime in use (built on first use; ONNX graphs exported/cached then)."""
        if self._runner is None:
            from tmatch.models.runtime import OnnxRunner, TorchRunner

            if self.runtime == "onnx":
                from tmatch.models.export import cached_export

                graphs = cached_export(self._model, self._config, self._weights_path)
                self._runner = OnnxRunner(graphs, threads=self.threads, device=self.device)
            else:
                self._runner = TorchRunner(self._model, self._config, device=self.device, threads=self.threads)
        return self._runner

    # ------------------------------------------------------------ subclass hooks
    def _encode(self, template: np.ndarray, image_hw: tuple[int, int]) -> _Encoded:
        raise NotImplementedError

    def _decide(self, out: dict[str, np.ndarray], i: int, enc: _Encoded
                ) -> tuple[float | None, float, float]:
        """``(presence probability or None, scale, angle)`` of image ``i`` in a batch output."""
        return None, 1.0, 0.0

    # ----------------------------------------------------------------- matching
    def prepare(self, template: np.ndarray) -> _Prepared:
        """The template's encodings, computed on first use for each search-image size and kept."""
        return _Prepared(template=template)

    def _encoded(self, prepared: _Prepared, image_hw: tuple[int, int]) -> _Encoded:
        key = (int(image_hw[0]), int(image_hw[1]))
        if key not in prepared.by_size:
            if len(prepared.by_size) >= _MAX_SIZES:  # e.g. a tracker's changing windows
                prepared.by_size.pop(next(iter(prepared.by_size)))
            prepared.by_size[key] = self._encode(prepared.template, key)
        return prepared.by_size[key]

    def _infer(self, prepared: _Prepared, images: Sequence[np.ndarray]) -> list[tuple]:
        """Per image: ``(probability map (H, W), presence or None, scale, angle)``."""
        from tmatch.models.inputs import mask_to_image, prepare_image

        cfg = self._config
        th, tw = prepared.template.shape[:2]
        results: list[tuple | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault((im.shape[0], im.shape[1]), []).append(i)
        runner = self.runner()
        for hw, idx in groups.items():
            enc = self._encoded(prepared, hw)
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                xs, geos = [], []
                for i in chunk:
                    x, _, content = prepare_image(cfg, images[i], (th, tw))
                    xs.append(x.numpy())
                    geos.append(_Geometry(hw, content))
                out = runner.search(np.stack(xs), enc.encoding)
                for j, i in enumerate(chunk):
                    prob = mask_to_image(cfg, _sigmoid(out["mask"][j, 0]), geos[j])
                    presence, scale, angle = self._decide(out, j, enc)
                    results[i] = (prob, presence, scale, angle)
        return results  # type: ignore[return-value]

    def _blobs(self, prob: np.ndarray) -> list[np.ndarray]:
        """Connected blobs of ``prob >= threshold`` (>= ``min_area`` px), largest mass first."""
        binary = (prob >= self.threshold).astype(np.uint8)
        if not binary.any():
            return []
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        blobs = []
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] >= self.min_area:
                comp = labels == k
                blobs.append((float(prob[comp].sum()), comp))
        blobs.sort(key=lambda t: -t[0])
        return [b for _, b in blobs]

    def _to_match(self, prob: np.ndarray, comp: np.ndarray, template_hw: tuple[int, int],
                  presence: float | None, scale: float, angle: float) -> Match:
        mask_score = float(prob[comp].mean())
        score = mask_score if presence is None else presence * mask_score
        poly, hm = fit_template_polygon(comp, template_hw, angle_hint=angle,
                                        scale_hint=None if presence is None else self._image_scale(scale))
        extra: dict[str, Any] = {"mask_score": round(mask_score, 4)}
        if presence is not None:
            extra.update(presence=round(presence, 4), scale=scale, angle=angle)
        return self._from_mask(comp, score, polygon=poly, homography=hm, **extra)

    def _absent(self, image_hw: tuple[int, int], presence: float | None, prob: np.ndarray) -> Match:
        extra = {} if presence is None else {"presence": round(presence, 4)}
        score = presence if presence is not None else float(prob.max(initial=0.0))
        return Match.absent(image_hw, score=score, method=self.name, **extra)

    def _present(self, presence: float | None) -> bool:
        return True

    def _image_scale(self, variant_scale: float) -> float:
        """Image pixels per template pixel implied by a pyramid variant (1 px per px at scale 1:
        ``neural`` maps template and image to the network with the same factor)."""
        return float(variant_scale)

    def _single(self, prepared: _Prepared, image: np.ndarray, res: tuple) -> Match:
        prob, presence, scale, angle = res
        blobs = self._blobs(prob) if self._present(presence) else []
        if not blobs:
            return self._absent(image.shape[:2], presence, prob)
        return self._to_match(prob, blobs[0], prepared.template.shape[:2], presence, scale, angle)

    def _match(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray) -> Match:
        return self._single(prepared, image, self._infer(prepared, [image])[0])

    def _match_batch(self, prepared: _Prepared, template: np.ndarray,
                     images: Sequence[np.ndarray]) -> list[Match]:
        t0 = time.perf_counter()
        res = self._infer(prepared, images)
        out = [self._single(prepared, im, r) for im, r in zip(images, res)]
        per = (time.perf_counter() - t0) * 1000.0 / max(1, len(images))
        for m in out:
            m.ms = per
        return out

    def _match_all(self, prepared: _Prepared, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        prob, presence, scale, angle = self._infer(prepared, [image])[0]
        if not self._present(presence):
            return []
        cands = [self._to_match(prob, b, template.shape[:2], presence, scale, angle)
                 for b in self._blobs(prob)[: max_instances * 4]]
        if min_score is not None:
            cands = [m for m in cands if m.score >= min_score]
        keep = geometry.nms([m.polygon for m in cands], [m.score for m in cands], iou_threshold=0.3)
        return [cands[i] for i in keep[:max_instances]]


class DualUNetMatcher(NetworkMatcher):
    """The original network: a U-Net with duplicated image/query encoders fused level by level.

    Options: see :class:`NetworkMatcher`. The query is the template centred on a black canvas
    of the search image's size; it is encoded once per image size and reused (video).

    >>> import tmatch
    >>> m = tmatch.load_matcher("dual-unet", allow_untrained=True, runtime="torch")
    >>> m.config.arch, m.options()["runtime"], m.device
    ('dual-unet', 'torch', 'cpu')
    """

    name = "dual-unet"
    arch = "dual-unet"
    description = "the original dual-encoder U-Net (query centred on a canvas, fused per level)"

    def _encode(self, template: np.ndarray, image_hw: tuple[int, int]) -> _Encoded:
        from tmatch.models.inputs import dual_query_canvas

        q = dual_query_canvas(self._config, template, image_hw)[None].numpy()
        return _Encoded(self.runner().encode(q), [(1.0, 0.0)], self._config.input_size / image_hw[1])


class NeuralSegMatcher(NetworkMatcher):
    """Ours: Siamese EfficientNet-Lite0, depthwise cross-correlation at strides 8 and 16, a light
    decoder to a full-resolution mask, a presence score, and a template pyramid over
    ``scales`` × ``rotations`` evaluated as one batch (the best variant per image is kept).

    Args:
        presence_threshold: presence probability under which the template is reported absent.
        scales: template scales tried (relative to the template's own size).
        rotations: template rotations tried, degrees (clockwise on screen).
        **options: see :class:`NetworkMatcher`.

    >>> import numpy as np, tmatch
    >>> m = tmatch.load_matcher("neural-seg", allow_untrained=True, runtime="torch")
    >>> img = np.zeros((64, 80, 3), np.uint8)
    >>> m.match(img[:20, :30], img).mask.shape
    (64, 80)
    """

    name = "neural-seg"
    arch = "neural-seg"
    description = "Siamese correlation network trained end to end to segment the template (experimental)"

    OPTIONS = NetworkMatcher.OPTIONS + (
        Option("presence_threshold", float, 0.5, "presence probability under which the template is absent",
               low=0.0, high=1.0),
        Option("scales", tuple, (0.8, 1.0, 1.25), "template scales tried", low=0.05, high=20.0),
        Option("rotations", tuple, (0.0,), "template rotations tried, degrees (clockwise on screen)"),
    )

    def _encode(self, template: np.ndarray, image_hw: tuple[int, int]) -> _Encoded:
        from tmatch.models.inputs import neural_scale, template_canvas

        r = neural_scale(self._config, template.shape[:2], image_hw)
        variants = [(s, a) for s in self.scales for a in self.rotations]
        q = np.stack([template_canvas(self._config, template, r * s, a).numpy() for s, a in variants])
        return _Encoded(self.runner().encode(q), variants, r)

    def _decide(self, out: dict[str, np.ndarray], i: int, enc: _Encoded) -> tuple[float | None, float, float]:
        k = int(out["variant"][i])
        s, a = enc.variants[k]
        return float(_sigmoid(np.float32(out["presence"][i]))), s, a

    def _present(self, presence: float | None) -> bool:
        return presence is None or presence >= self.presence_threshold
