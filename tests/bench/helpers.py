"""Matchers used by the benchmark tests, importable by worker processes."""

from __future__ import annotations

from typing import ClassVar

from tmatch.matchers.ncc import NCCMatcher


class FlakyNCC(NCCMatcher):
    """NCC that raises after ``fail_after`` matches (a crash in the middle of a run)."""

    name = "flaky"
    calls: ClassVar[int] = 0
    fail_after: ClassVar[int | None] = None

    def _match(self, prepared, template, image):
        cls = type(self)
        if cls.fail_after is not None and cls.calls >= cls.fail_after:
            raise RuntimeError("simulated crash")
        cls.calls += 1
        return super()._match(prepared, template, image)


class BadInputNCC(NCCMatcher):
    """NCC that rejects every third case with a user-level error (recorded, not fatal)."""

    name = "picky"

    def _match(self, prepared, template, image):
        from tmatch.errors import InputError

        self._n = getattr(self, "_n", 0) + 1
        if self._n % 3 == 0:
            raise InputError("picky matcher refuses this case")
        return super()._match(prepared, template, image)


class FakeGPUNCC(NCCMatcher):
    """NCC claiming to run on a GPU: the harness must batch it through ``match_many``."""

    name = "fakegpu"
    device = "cuda"
    batches: ClassVar[list[int]] = []

    def match_many(self, template, images):
        images = list(images)
        type(self).batches.append(len(images))
        return super().match_many(template, images)
