"""The matcher interface: what every matcher shares, so each one implements only its core step.

A subclass declares its options once, as ``OPTIONS`` (a table of
:class:`~tmatch.matchers.options.Option`), and implements :meth:`Matcher.prepare` (the
template's work, done once — features, pyramids, encodings) and :meth:`Matcher._match` (locate
the prepared template in one image). It may override :meth:`Matcher._match_all` for several
instances and :meth:`Matcher._match_batch` for batched inference. Option checking, input checks,
conversion, timing and turning a homography, polygon or mask into a full
:class:`~tmatch.match.Match` live here, and so does what keeps every matcher correct and calm:
the working size (``work_side``: a larger image is matched downscaled, then again at full
resolution around the result, or in tiles), templates larger than the image (searched shrunk
by a :attr:`Matcher.scale_invariant` matcher, refused with a reason by others), templates
without texture (``found=False`` with the reason) and the rejection of degenerate geometry
(:func:`tmatch.geometry.degenerate`) for every result. See ``docs/robustness-matchers.md``. Code that combines matchers (``hybrid``) uses the public
methods only: :meth:`match_prepared`, :meth:`match_prepared_many`, :meth:`match_all_prepared`.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

import cv2
import numpy as np

from tmatch import geometry
from tmatch.calibration import confidence
from tmatch.errors import InputError, TmatchError
from tmatch.io import ImageLike, check_pair, larger_than, read_image
from tmatch.match import Match
from tmatch.matchers.options import Option, resolve
from tmatch.region import Region, in_image_pixels, searched_part

#: a template whose grey levels vary less than this (standard deviation) has no texture.
_FLAT = 1.0
#: the least side (px) of a searchable image, and of a template shrunk to fit one.
_MIN_SIDE = 4


def _resize(rgb: np.ndarray, s: float) -> np.ndarray:
    """``rgb`` resized by ``s`` (the same array when ``s == 1``)."""
    if s == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


class Matcher:
    """Base class. Subclasses set ``name``, ``description`` and ``OPTIONS`` and implement ``_match``.

    ``Matcher(**options)`` checks ``options`` against ``OPTIONS`` (unknown names and bad values
    raise :class:`~tmatch.errors.InputError`) and sets each option as an attribute; a subclass
    that needs more set-up calls ``super().__init__(**options)`` first. :meth:`options` reports
    the values in use; :attr:`device` and :attr:`threads` say where and with how many threads
    the matcher computes (the benchmark reads them).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: whether ``match_all`` finds several instances (otherwise it returns at most one).
    multi_instance: ClassVar[bool] = False
    #: the options this matcher accepts, declared once.
    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    #: the library whose thread pool the matcher computes with: ``"opencv"`` or ``"torch"``.
    compute: ClassVar[str] = "opencv"
    #: whether the matcher finds the template at other sizes than its own; a template larger
    #: than the image is then searched shrunk to ``fit_share`` of the image (single-scale
    #: ``ncc`` answers found=False with the reason instead).
    scale_invariant: ClassVar[bool] = True
    fit_share: ClassVar[float] = 0.5
    #: the least side (px) a template keeps in a downscaled search; a smaller one is searched
    #: at full resolution in tiles of ``work_side``.
    min_work_template: ClassVar[int] = 48
    #: the working size when a matcher declares no ``work_side`` option.
    work_side: int = 4096

    def __init__(self, **options: Any):
        for key, value in resolve(self.OPTIONS, options, self.name or type(self).__name__).items():
            setattr(self, key, value)

    # ------------------------------------------------------- declared resources
    @property
    def device(self) -> str:
        """Where the matcher computes: ``"cpu"`` unless a subclass runs on a GPU."""
        return getattr(self, "_device", None) or "cpu"

    @device.setter
    def device(self, value: str) -> None:
        self._device = str(value)

    @property
    def threads(self) -> int | None:
        """The thread count the matcher was asked for (``None``: its library's default)."""
        return getattr(self, "_threads", None)

    @threads.setter
    def threads(self, value: int | None) -> None:
        self._threads = None if value is None else int(value)

    def threads_in_use(self) -> int:
        """Threads the matcher computes with now: its own ``threads``, else the current count of
        its library's pool (:attr:`compute`)."""
        if self.threads:
            return int(self.threads)
        if self.compute == "torch":
            import torch

            return int(torch.get_num_threads())
        import cv2

        return max(1, int(cv2.getNumThreads()))

    # ----------------------------------------------------------------- public API
    def match(self, template: ImageLike, image: ImageLike, region: Region | None = None) -> Match:
        """Locate ``template`` ``(h, w, 3)`` in ``image`` ``(H, W, 3)`` (RGB uint8 or paths).

        A template larger than the image is searched downscaled by a scale-invariant matcher
        (the polygon maps back to the original template); a single-scale one answers
        ``found=False`` with ``extra["reason"]``. So does a template without texture.

        Args:
            region: ``(x, y, w, h)``: search only there (clipped to the image); the answer is in
                the whole image's coordinates (:mod:`tmatch.region`).

        Returns:
            a :class:`Match`; ``found=False`` with an empty mask when the template is absent.
        """
        t0 = time.perf_counter()
        tpl = read_image(template, "template")
        img, offset, full_hw = searched_part(read_image(image, "image"), region)
        check_pair(tpl, img)
        prepared = self.prepare(tpl)
        m = in_image_pixels(self._solve(prepared, tpl, img), offset, full_hw)
        return self._finish(self._stamp(m, t0))

    def match_many(self, template: ImageLike, images: Iterable[ImageLike],
                   region: Region | None = None) -> list[Match]:
        """Match one template against many images, doing the template's work once.

        A bad image (unreadable, wrong shape, NaN pixels, a ``region`` outside it) gets an
        error result (:meth:`Match.failed`, ``error`` set) in its place; the others are matched.
        The ``ms`` of each result is its own share: the template's preparation is counted in the
        first result only. ``region``: as in :meth:`match`, the same for every image.
        """
        t0 = time.perf_counter()
        tpl = read_image(template, "template")
        check_pair(tpl, tpl)
        prepared = self.prepare(tpl)
        prep_ms = (time.perf_counter() - t0) * 1000.0
        imgs: list[tuple[np.ndarray, tuple[int, int], tuple[int, int]] | Match] = []
        for im in images:
            try:
                imgs.append(searched_part(read_image(im, "image"), region))
            except TmatchError as e:
                imgs.append(Match.failed(str(e), method=self.name))
        if not imgs:
            return []
        good = [im for im in imgs if not isinstance(im, Match)]
        t1 = time.perf_counter()
        solved = iter(self._solve_batch(prepared, tpl, [g[0] for g in good]) if good else [])
        per = (time.perf_counter() - t1) * 1000.0 / max(1, len(good))
        out = [im if isinstance(im, Match) else in_image_pixels(next(solved), im[1], im[2]) for im in imgs]
        for i, m in enumerate(out):
            if m.ms <= 0 and m.error is None:
                m.ms = per
            if i == 0:
                m.ms += prep_ms
            if m.error is None:
                self._finish(m)
            m.method = m.method or self.name
        return out

    def match_prepared(self, prepared: Any, template: np.ndarray, image: ImageLike,
                       region: Region | None = None) -> Match:
        """Match with a template already prepared by :meth:`prepare` (video loops, servers).

        Args:
            prepared: what ``self.prepare(template)`` returned.
            template: the same ``(h, w, 3)`` RGB uint8 template.
            image: ``(H, W, 3)`` search image (array or path).
            region: ``(x, y, w, h)``: search only there, as in :meth:`match`.
        """
        img, offset, full_hw = searched_part(read_image(image, "image"), region)
        check_pair(template, img)
        return self._finish(in_image_pixels(self._solve_batch(prepared, template, [img])[0], offset, full_hw))

    def match_all(self, template: ImageLike, image: ImageLike, max_instances: int = 10,
                  min_score: float | None = None, region: Region | None = None) -> list[Match]:
        """Every instance of the template in the image, best first, after NMS.

        Args:
            max_instances: upper bound on the number of results.
            min_score: results scoring below it are dropped (matcher default when ``None``).
            region: ``(x, y, w, h)``: search only there, as in :meth:`match`.
        """
        if max_instances < 1:
            raise InputError(f"max_instances must be >= 1, got {max_instances}")
        t0 = time.perf_counter()
        tpl = read_image(template, "template")
        img, offset, full_hw = searched_part(read_image(image, "image"), region)
        check_pair(tpl, img)
        prepared = self.prepare(tpl)
        found = self._solve_all(prepared, tpl, img, int(max_instances), min_score)
        found = [in_image_pixels(m, offset, full_hw) for m in found if m.found][:max_instances]
        ms = (time.perf_counter() - t0) * 1000.0
        for m in found:
            m.ms = ms
            self._finish(m)
        return found

    def match_each(self, prepared_templates: Sequence[Any], templates: Sequence[np.ndarray],
                   image: ImageLike, region: Region | None = None) -> list[Match]:
        """One best match per template in one image, the image's work (keypoints and
        descriptors, feature maps) done once for all of them.

        Args:
            prepared_templates: ``self.prepare(t)`` of every template.
            templates: the ``(h, w, 3)`` RGB uint8 templates, in the same order.
            image: ``(H, W, 3)`` search image (array or path).
            region: ``(x, y, w, h)``: search only there, as in :meth:`match`.

        Returns:
            a :class:`Match` per template, in order; each result's ``extra["template"]`` is its
            template's index.

        >>> import numpy as np, tmatch
        >>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        >>> m = tmatch.load_matcher("ncc")
        >>> ts = [img[10:30, 20:50], img[30:50, 5:25]]
        >>> [r.box for r in m.match_each([m.prepare(t) for t in ts], ts, img)]
        [(20, 10, 30, 20), (5, 30, 20, 20)]
        """
        if len(prepared_templates) != len(templates):
            raise InputError(f"{len(prepared_templates)} prepared templates for {len(templates)} templates")
        img, offset, full_hw = searched_part(read_image(image, "image"), region)
        out = []
        with self._image_scope(img):
            for i, (p, t) in enumerate(zip(prepared_templates, templates)):
                t0 = time.perf_counter()
                check_pair(t, img)
                m = self._finish(self._stamp(in_image_pixels(self._solve(p, t, img), offset, full_hw), t0))
                m.extra["template"] = i
                out.append(m)
        return out

    def match_all_templates(self, templates: Sequence[ImageLike], image: ImageLike,
                            max_instances: int = 10, min_score: float | None = None,
                            nms_iou: float = 0.3) -> list[Match]:
        """Every instance of every template in one image ("which of these icons are on this
        screen"), best first, with non-maximum suppression across templates. The image's work
        is done once.

        Args:
            templates: ``(h, w, 3)`` templates (arrays or paths).
            max_instances: upper bound on the results of each template.
            min_score: results scoring below it are dropped (matcher default when ``None``).
            nms_iou: a result overlapping a better one (of any template) by more than this
                polygon IoU is dropped.

        Returns:
            found matches, best first; ``extra["template"]`` is each one's template index.
        """
        if max_instances < 1:
            raise InputError(f"max_instances must be >= 1, got {max_instances}")
        if not 0.0 <= nms_iou <= 1.0:
            raise InputError(f"nms_iou must be in [0, 1], got {nms_iou}")
        t0 = time.perf_counter()
        img = read_image(image, "image")
        tpls = [read_image(t, f"template {i}") for i, t in enumerate(templates)]
        found: list[Match] = []
        with self._image_scope(img):
            for i, tpl in enumerate(tpls):
                check_pair(tpl, img)
                ms = self._solve_all(self.prepare(tpl), tpl, img, int(max_instances), min_score)
                for m in ms:
                    if m.found:
                        m.extra["template"] = i
                        found.append(m)
        keep = geometry.nms([m.polygon for m in found], [m.score for m in found], nms_iou)
        out = [found[i] for i in keep]
        ms_total = (time.perf_counter() - t0) * 1000.0
        for m in out:
            m.ms = ms_total
            self._finish(m)
        return out

    def match_prepared_many(self, prepared: Any, template: np.ndarray,
                            images: Sequence[np.ndarray]) -> list[Match]:
        """:meth:`match_prepared` on several checked ``(H, W, 3)`` images (batched where the
        matcher batches); each result's ``ms`` is its own."""
        imgs = [read_image(im, "image") for im in images]
        check_pair(template, template)
        return [self._finish(m) for m in self._solve_batch(prepared, template, imgs)] if imgs else []

    def match_all_prepared(self, prepared: Any, template: np.ndarray, image: ImageLike,
                           max_instances: int = 10, min_score: float | None = None,
                           region: Region | None = None) -> list[Match]:
        """:meth:`match_all` with a template already prepared by :meth:`prepare`."""
        if max_instances < 1:
            raise InputError(f"max_instances must be >= 1, got {max_instances}")
        img, offset, full_hw = searched_part(read_image(image, "image"), region)
        check_pair(template, img)
        return [self._finish(in_image_pixels(m, offset, full_hw))
                for m in self._solve_all(prepared, template, img, int(max_instances), min_score)]

    @classmethod
    def option_table(cls) -> dict[str, Option]:
        """``{name: Option}``: what this matcher accepts."""
        return {o.name: o for o in cls.OPTIONS}

    def options(self) -> dict[str, Any]:
        """The declared options with the values in use (resolved: e.g. ``runtime="onnx"`` for
        ``"auto"`` on a CPU)."""
        return {o.name: getattr(self, o.name) for o in self.OPTIONS}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    # ------------------------------------------------------------ subclass hooks
    def prepare(self, template: np.ndarray) -> Any:
        """The template's work, done once (features, encodings). Default: the array itself."""
        return template

    def _match(self, prepared: Any, template: np.ndarray, image: np.ndarray) -> Match:
        raise NotImplementedError

    def _match_batch(self, prepared: Any, template: np.ndarray,
                     images: Sequence[np.ndarray]) -> list[Match]:
        out = []
        for im in images:
            t0 = time.perf_counter()
            out.append(self._stamp(self._match(prepared, template, im), t0))
        return out

    def _match_all(self, prepared: Any, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        m = self._match(prepared, template, image)
        if min_score is not None and m.score < min_score:
            return []
        return [m] if m.found else []

    # --------------------------------------------- working size, larger templates
    def _refusal(self, template: np.ndarray, image_hw: tuple[int, int]) -> str | None:
        """Why this pair gets ``found=False`` without a search, or ``None``."""
        gray = template.mean(axis=2)
        if float(gray.std()) < _FLAT:
            return "template has no texture (one flat colour): nothing to locate"
        th, tw = template.shape[:2]
        if min(image_hw) < _MIN_SIDE:
            return f"image ({image_hw[1]}x{image_hw[0]}) is too small to search: each side needs >= {_MIN_SIDE} px"
        if larger_than(template.shape[:2], image_hw):
            if not self.scale_invariant:
                return (f"template ({tw}x{th}) is larger than the image ({image_hw[1]}x{image_hw[0]}) "
                        f"and {self.name} searches one scale")
            if min(th, tw) * self._scales(template.shape[:2], image_hw)[0] < _MIN_SIDE:
                return (f"template ({tw}x{th}) would be thinner than {_MIN_SIDE} px once shrunk to fit "
                        f"the image ({image_hw[1]}x{image_hw[0]})")
        return None

    def _scales(self, template_hw: tuple[int, int], image_hw: tuple[int, int]) -> tuple[float, float]:
        """``(t, f)``: the image is resized by ``f`` to the working size, the template by ``f``
        too — or, when it would not fit, by ``t`` so that it spans ``fit_share`` of the image on
        its tightest side."""
        f = self._work_scale(image_hw)
        (th, tw), (H, W) = template_hw, image_hw
        Hs, Ws = max(1, round(H * f)), max(1, round(W * f))
        if larger_than((round(th * f), round(tw * f)), (Hs, Ws)):
            return self.fit_share * min(Hs / th, Ws / tw), f
        return f, f

    def _work_scale(self, image_hw: tuple[int, int]) -> float:
        side = int(getattr(self, "work_side", 0) or 0)
        return min(1.0, side / max(image_hw)) if side else 1.0

    def _plan(self, template: np.ndarray, image: np.ndarray) -> str:
        """``"plain"`` (match as is), ``"refuse"``, ``"rescale"`` (downscale the image and/or
        the template, map back) or ``"tiles"`` (full resolution, tile by tile)."""
        if self._refusal(template, image.shape[:2]):
            return "refuse"
        f = self._work_scale(image.shape[:2])
        large = larger_than(template.shape[:2], image.shape[:2])
        if f >= 1.0 and not large:
            return "plain"
        if not large and min(template.shape[:2]) * f < self.min_work_template:
            return "tiles"
        return "rescale"

    def _solve(self, prepared: Any, template: np.ndarray, image: np.ndarray) -> Match:
        """:meth:`_match` within the working size, with every result's geometry checked."""
        plan = self._plan(template, image)
        if plan == "plain":
            return self._checked(self._match(prepared, template, image), template.shape[:2])
        if plan == "refuse":
            return Match.absent(image.shape[:2], method=self.name,
                                reason=self._refusal(template, image.shape[:2]))
        if plan == "tiles":
            found = self._tiled(prepared, template, image, None, None)
            best = max(found, key=lambda m: (m.found, m.score), default=None)
            return best if best is not None else Match.absent(image.shape[:2], method=self.name)
        return self._rescaled(prepared, template, image)

    def _solve_batch(self, prepared: Any, template: np.ndarray,
                     images: Sequence[np.ndarray]) -> list[Match]:
        plain = [i for i, im in enumerate(images) if self._plan(template, im) == "plain"]
        out: list[Match | None] = [None] * len(images)
        if plain:
            for i, m in zip(plain, self._match_batch(prepared, template, [images[i] for i in plain])):
                out[i] = self._checked(m, template.shape[:2])
        for i, im in enumerate(images):
            if out[i] is None:
                t0 = time.perf_counter()
                out[i] = self._stamp(self._solve(prepared, template, im), t0)
        return out  # type: ignore[return-value]

    def _solve_all(self, prepared: Any, template: np.ndarray, image: np.ndarray,
                   max_instances: int, min_score: float | None) -> list[Match]:
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))
                                      or not math.isfinite(min_score)):
            raise InputError(f"min_score must be a finite number or None, got {min_score!r}")
        plan = self._plan(template, image)
        th_tw = template.shape[:2]
        if plan == "refuse":
            return []
        if plan == "plain":
            ms = self._match_all(prepared, template, image, max_instances, min_score)
            return [m for m in (self._checked(m, th_tw) for m in ms) if m.found]
        if plan == "tiles":
            ms = self._tiled(prepared, template, image, max_instances, min_score)
        else:
            tpl, img, t, f = self._scaled_pair(template, image)
            prep = prepared if tpl is template else self.prepare(tpl)
            ms = [self._to_full(self._checked(m, tpl.shape[:2]), image.shape[:2], t, f)
                  for m in self._match_all(prep, tpl, img, max_instances, min_score)]
        ms = [m for m in ms if m.found]
        keep = geometry.nms([m.polygon for m in ms], [m.score for m in ms], 0.3)
        return [ms[i] for i in keep[:max_instances]]

    def _scaled_pair(self, template: np.ndarray, image: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """``(template', image', t, f)``: the pair resized as :meth:`_scales` says."""
        t, f = self._scales(template.shape[:2], image.shape[:2])
        return _resize(template, t), self._work_image(image, f), t, f

    def _rescaled(self, prepared: Any, template: np.ndarray, image: np.ndarray) -> Match:
        """Match the downscaled pair, map the result back; when the image was downscaled, match
        again at full resolution in a window around the result (within the working size)."""
        tpl, img, t, f = self._scaled_pair(template, image)
        prep = prepared if tpl is template else self.prepare(tpl)
        m = self._to_full(self._checked(self._match(prep, tpl, img), tpl.shape[:2]), image.shape[:2], t, f)
        m.extra["template_scale"] = round(t, 6)
        if f >= 1.0 or not m.found:
            return m
        H, W = image.shape[:2]
        (x0, y0), (x1, y1) = m.polygon.min(axis=0), m.polygon.max(axis=0)
        pad = 0.25 * max(x1 - x0, y1 - y0) + 8.0 / f
        x0, y0 = int(max(0, np.floor(x0 - pad))), int(max(0, np.floor(y0 - pad)))
        x1, y1 = int(min(W, np.ceil(x1 + pad))), int(min(H, np.ceil(y1 + pad)))
        if max(x1 - x0, y1 - y0) > self.work_side or larger_than(template.shape[:2], (y1 - y0, x1 - x0)):
            return m  # the footprint is large: the downscaled result is already precise
        sub = np.ascontiguousarray(image[y0:y1, x0:x1])
        r = self._checked(self._match(prepared, template, sub), template.shape[:2])
        if not r.found:
            return m
        r = self._to_full(r, (H, W), 1.0, 1.0, (x0, y0))
        r.extra["refined_window"] = [x0, y0, x1 - x0, y1 - y0]
        return r

    def _tiled(self, prepared: Any, template: np.ndarray, image: np.ndarray,
               max_instances: int | None, min_score: float | None) -> list[Match]:
        """Full-resolution matches tile by tile (tiles of ``work_side``, overlapping by 1.5
        template sides); ``max_instances=None`` means one best match per tile."""
        H, W = image.shape[:2]
        side = max(int(self.work_side), 1)
        overlap = int(1.5 * max(template.shape[:2])) + 1
        step = max(1, side - overlap)
        out = []
        for y0 in range(0, max(1, H - overlap), step):
            for x0 in range(0, max(1, W - overlap), step):
                sub = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
                if larger_than(template.shape[:2], sub.shape[:2]):
                    continue
                if max_instances is None:
                    ms = [self._match(prepared, template, sub)]
                else:
                    ms = self._match_all(prepared, template, sub, max_instances, min_score)
                out += [self._to_full(self._checked(m, template.shape[:2]), (H, W), 1.0, 1.0, (x0, y0))
                        for m in ms]
        return out

    def _to_full(self, m: Match, image_hw: tuple[int, int], t: float = 1.0, f: float = 1.0,
                 offset: tuple[int, int] = (0, 0)) -> Match:
        """A result found between the template resized by ``t`` and the image resized by ``f``
        (or a window of it at ``offset``), in the original template's and image's coordinates."""
        if t == 1.0 and f == 1.0 and offset == (0, 0) and m.image_shape == tuple(image_hw):
            return m
        ox, oy = offset
        shift = np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
        if not m.found:
            out = Match.absent(image_hw, score=m.score, method=m.method or self.name, **m.extra)
            return out
        poly = np.asarray(m.polygon, np.float64) / f + np.array([ox, oy], np.float64)
        hm = None if m.homography is None else shift @ geometry.scale_homography(m.homography, t, f)
        if m.homography is not None or f != 1.0:
            mask = geometry.mask_from_polygon(poly, image_hw)
        else:
            mask = np.zeros(image_hw, bool)
            h, w = m.mask.shape
            mask[oy:oy + h, ox:ox + w] = m.mask[: image_hw[0] - oy, : image_hw[1] - ox]
        return Match(found=True, score=m.score, polygon=poly, box=geometry.box_from_polygon(poly, image_hw),
                     mask=mask, homography=hm, ms=m.ms, method=m.method or self.name, extra=dict(m.extra))

    def _checked(self, m: Match, template_hw: tuple[int, int]) -> Match:
        """``m``, or ``found=False`` with ``extra["rejected"]`` when its geometry is degenerate
        (zero area, self-crossing, non-convex for a homography of the template's rectangle,
        absurd scale): a rejected candidate is not an answer."""
        if not m.found:
            return m
        why = geometry.degenerate(m.polygon, template_hw, m.image_shape, convex=m.homography is not None)
        if why is None:
            return m
        extra = {k: v for k, v in m.extra.items() if k != "rejected"}
        return Match.absent(m.image_shape, score=m.score, method=m.method or self.name, rejected=why, **extra)

    # -------------------------------------------- the image's work, done once
    @contextmanager
    def _image_scope(self, image: np.ndarray) -> Iterator[None]:
        """Within the block, :meth:`_memo` keeps the work on ``image`` (features, feature maps)
        and on its working-size copy, so that several templates share it (:meth:`match_each`,
        :meth:`match_all_templates`). Windows and tiles are not kept (memory stays bounded)."""
        outer = self.__dict__.get("_memo_store")
        self.__dict__["_memo_store"] = {"images": [image]} if outer is None else outer
        try:
            yield
        finally:
            self.__dict__["_memo_store"] = outer

    def _memo(self, kind: str, image: np.ndarray, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept for the scope's image (or its working-size copy) and ``key``
        inside :meth:`_image_scope`; computed every time otherwise."""
        store = self.__dict__.get("_memo_store")
        if store is None or not any(image is im for im in store["images"]):
            return compute()
        k = (kind, id(image), key)
        if k not in store:
            store[k] = compute()
        return store[k]

    def _work_image(self, image: np.ndarray, f: float) -> np.ndarray:
        """``image`` resized by ``f``; inside :meth:`_image_scope` the copy is made once and
        its work is kept like the image's."""
        store = self.__dict__.get("_memo_store")
        small = self._memo("resized", image, round(f, 9), lambda: _resize(image, f))
        if store is not None and any(image is im for im in store["images"]) \
                and not any(small is im for im in store["images"]):
            store["images"].append(small)
        return small

    # ------------------------------------------------------------------ helpers
    def _inputs(self, template: ImageLike, image: ImageLike) -> tuple[np.ndarray, np.ndarray]:
        tpl = read_image(template, "template")
        img = read_image(image, "image")
        check_pair(tpl, img)
        return tpl, img

    def _finish(self, m: Match) -> Match:
        """``m`` with its method named and its calibrated :attr:`~Match.confidence` — always the
        curve of the method it now names (a combined matcher may hand on a stage's answer)."""
        m.method = m.method or self.name
        m.confidence = None if m.error is not None else confidence(m.method, m.found, m.score)
        return m

    def _stamp(self, m: Match, t0: float) -> Match:
        m.ms = (time.perf_counter() - t0) * 1000.0
        m.method = m.method or self.name
        return m

    def _from_homography(self, hm: np.ndarray, template_hw: tuple[int, int],
                         image_hw: tuple[int, int], score: float, **extra: Any) -> Match:
        """A found :class:`Match` from a template-to-image homography (our convention)."""
        poly = geometry.template_polygon(hm, template_hw)
        return self._from_polygon(poly, image_hw, score, homography=hm, **extra)

    def _from_polygon(self, polygon: np.ndarray, image_hw: tuple[int, int], score: float,
                      homography: np.ndarray | None = None, **extra: Any) -> Match:
        mask = geometry.mask_from_polygon(polygon, image_hw)
        return Match(found=True, score=float(score), polygon=np.asarray(polygon, np.float64),
                     box=geometry.box_from_polygon(polygon, image_hw), mask=mask,
                     homography=homography, method=self.name, extra=dict(extra))

    def _from_mask(self, mask: np.ndarray, score: float, polygon: np.ndarray | None = None,
                   homography: np.ndarray | None = None, **extra: Any) -> Match:
        """A :class:`Match` from a predicted mask; polygon from a min-area rectangle if not given.
        An empty mask gives a 'not found' result."""
        mask = np.asarray(mask, bool)
        if not mask.any():
            return Match.absent(mask.shape, score=score, method=self.name, **extra)
        if polygon is None:
            polygon = geometry.polygon_from_mask(mask)
        box = geometry.box_from_mask(mask)
        return Match(found=True, score=float(score), polygon=polygon, box=box, mask=mask,
                     homography=homography, method=self.name, extra=dict(extra))
