"""An ASGI middleware that refuses request bodies over a size, before they are parsed.

A declared ``Content-Length`` over the limit is answered 413 at once (the body is read and
discarded up to a bound, so that the client, still sending, reads the answer instead of a
reset connection). A body without a length that grows past the limit is stopped the same way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes the limit; handled as a 413 like any
    :class:`~starlette.exceptions.HTTPException` (the web framework lets these through)."""

    def __init__(self, max_body: int):
        super().__init__(413, f"request body is larger than {max_body / 1e6:.1f} MB")


class BodyLimit:
    """Wrap ``app``: HTTP bodies over ``max_body`` bytes get a JSON 413."""

    def __init__(self, app: Any, max_body: int, drain: int | None = None,
                 on_reject: Callable[[], None] | None = None):
        self.app = app
        self.max_body = int(max_body)
        self.drain = int(drain if drain is not None else max(4 * self.max_body, 64_000_000))
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    length = None
        if length is not None and length > self.max_body:
            await self._reject(receive, send, length)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return msg

        async def tracked(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(receive, send, None)

    async def _reject(self, receive: Receive, send: Send, length: int | None) -> None:
        if self.on_reject is not None:
            self.on_reject()
        if length is None or length <= self.drain:  # read the rest so the client sees the answer
            total = 0
            while total <= self.drain:
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                total += len(msg.get("body", b""))
                if not msg.get("more_body", False):
                    break
        limit_mb = self.max_body / 1e6
        body = json.dumps({"status": 413, "error": "too_large",
                           "detail": f"request body is larger than {limit_mb:.1f} MB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
