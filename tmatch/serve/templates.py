"""Registered templates: a bounded least-recently-used store keyed by random ids."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmatch.serve.errors import ApiError


@dataclass
class TemplateEntry:
    """A template registered for one method and its options.

    Attributes:
        image: ``(h, w, 3)`` RGB uint8 template.
        prepared: ``{worker index: matcher.prepare(image)}`` — each worker prepares its own copy
            once (the first on registration), so no two threads share a prepared object.
    """

    id: str
    method: str
    options: dict[str, Any]
    key: tuple
    image: np.ndarray
    created: float = field(default_factory=time.time)
    prepared: dict[int, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        h, w = self.image.shape[:2]
        return {"id": self.id, "method": self.method, "options": self.options, "size": [h, w]}


class TemplateStore:
    """At most ``capacity`` templates; adding one more forgets the least recently used.

    >>> import numpy as np
    >>> s = TemplateStore(1)
    >>> a = s.add("sift", {}, (), np.zeros((8, 8, 3), np.uint8))
    >>> b = s.add("sift", {}, (), np.zeros((8, 8, 3), np.uint8))
    >>> len(s), s.evicted
    (1, 1)
    """

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.evicted = 0
        self._items: OrderedDict[str, TemplateEntry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, method: str, options: dict[str, Any], key: tuple, image: np.ndarray) -> TemplateEntry:
        entry = TemplateEntry(secrets.token_hex(8), method, dict(options), key, image)
        with self._lock:
            self._items[entry.id] = entry
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
                self.evicted += 1
        return entry

    def get(self, template_id: str) -> TemplateEntry:
        """The entry (now the most recently used), or a 404 :class:`ApiError`."""
        with self._lock:
            entry = self._items.get(template_id)
            if entry is None:
                raise ApiError(404, "unknown_template",
                               f"no template {template_id!r} (never registered, deleted, or "
                               f"forgotten after {self.capacity} newer ones); register it again")
            self._items.move_to_end(template_id)
            return entry

    def delete(self, template_id: str) -> bool:
        with self._lock:
            return self._items.pop(template_id, None) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
