"""The matcher interface: what every matcher shares, so each one implements only its core step.

A subclass declares its options once, as ``OPTIONS`` (a table of
:class:`~tmatch.matchers.options.Option`), and implements :meth:`Matcher.prepare` (the
template's work, done once — features, pyramids, encodings) and :meth:`Matcher._match` (locate
the prepared template in one image). It may override :meth:`Matcher._match_all` for several
instances and :meth:`Matcher._match_batch` for batched inference. Option checking, input checks,
conversion, timing and turning a homography, polygon or mask into a full
:class:`~tmatch.match.Match` live here. Code that combines matchers (``hybrid``) uses the public
methods only: :meth:`match_prepared`, :meth:`match_prepared_many`, :meth:`match_all_prepared`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from tmatch import geometry
from tmatch.errors import InputError
from tmatch.io import ImageLike, check_pair, read_image
from tmatch.match import Match
from tmatch.matchers.options import Option, resolve


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
    def match(self, template: ImageLike, image: ImageLike) -> Match:
        """Locate ``template`` ``(h, w, 3)`` in ``image`` ``(H, W, 3)`` (RGB uint8 or paths).

        Returns:
            a :class:`Match`; ``found=False`` with an empty mask when the template is absent.
        """
        t0 = time.perf_counter()
        tpl, img = self._inputs(template, image)
        prepared = self.prepare(tpl)
        m = self._match(prepared, tpl, img)
        return self._stamp(m, t0)

    def match_many(self, template: ImageLike, images: Iterable[ImageLike]) -> list[Match]:
        """Match one template against many images, doing the template's work once.

        The ``ms`` of each result is its own share: the template's preparation is counted in
        the first result only.
        """
        t0 = time.perf_counter()
        tpl = read_image(template, "template")
        prepared = self.prepare(tpl)
        prep_ms = (time.perf_counter() - t0) * 1000.0
        imgs = [read_image(im, "image") for im in images]
        for im in imgs:
            check_pair(tpl, im)
        if not imgs:
            return []
        t1 = time.perf_counter()
        out = self._match_batch(prepared, tpl, imgs)
        per = (time.perf_counter() - t1) * 1000.0 / len(imgs)
        for i, m in enumerate(out):
            if m.ms <= 0:
                m.ms = per
            if i == 0:
                m.ms += prep_ms
            m.method = m.method or self.name
        return out

    def match_prepared(self, prepared: Any, template: np.ndarray, image: ImageLike) -> Match:
        """Match with a template already prepared by :meth:`prepare` (video loops, servers).

        Args:
            prepared: what ``self.prepare(template)`` returned.
            template: the same ``(h, w, 3)`` RGB uint8 template.
            image: ``(H, W, 3)`` search image (array or path).
        """
        img = read_image(image, "image")
        check_pair(template, img)
        return self._match_batch(prepared, template, [img])[0]

    def match_all(self, template: ImageLike, image: ImageLike, max_instances: int = 10,
                  min_score: float | None = None) -> list[Match]:
        """Every instance of the template in the image, best first, after NMS.

        Args:
            max_instances: upper bound on the number of results.
            min_score: results scoring below it are dropped (matcher default when ``None``).
        """
        if max_instances < 1:
            raise InputError(f"max_instances must be >= 1, got {max_instances}")
        t0 = time.perf_counter()
        tpl, img = self._inputs(template, image)
        prepared = self.prepare(tpl)
        found = self._match_all(prepared, tpl, img, int(max_instances), min_score)
        found = [m for m in found if m.found][:max_instances]
        ms = (time.perf_counter() - t0) * 1000.0
        for m in found:
            m.ms = ms
            m.method = m.method or self.name
        return found

    def match_prepared_many(self, prepared: Any, template: np.ndarray,
                            images: Sequence[np.ndarray]) -> list[Match]:
        """:meth:`match_prepared` on several checked ``(H, W, 3)`` images (batched where the
        matcher batches); each result's ``ms`` is its own."""
        imgs = [read_image(im, "image") for im in images]
        for im in imgs:
            check_pair(template, im)
        return self._match_batch(prepared, template, imgs) if imgs else []

    def match_all_prepared(self, prepared: Any, template: np.ndarray, image: ImageLike,
                           max_instances: int = 10, min_score: float | None = None) -> list[Match]:
        """:meth:`match_all` with a template already prepared by :meth:`prepare`."""
        if max_instances < 1:
            raise InputError(f"max_instances must be >= 1, got {max_instances}")
        img = read_image(image, "image")
        check_pair(template, img)
        return self._match_all(prepared, template, img, int(max_instances), min_score)

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

    # ------------------------------------------------------------------ helpers
    def _inputs(self, template: ImageLike, image: ImageLike) -> tuple[np.ndarray, np.ndarray]:
        tpl = read_image(template, "template")
        img = read_image(image, "image")
        check_pair(tpl, img)
        return tpl, img

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
