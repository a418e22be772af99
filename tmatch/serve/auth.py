"""Bearer-token check for the API, as an ASGI middleware (it answers before a body is parsed)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

#: paths that need the token when one is set; the page, its files, /healthz and /docs do not.
PROTECTED = ("/v1/", "/metrics")


class TokenGate:
    """Requests to :data:`PROTECTED` paths without ``Authorization: Bearer <token>`` get 401."""

    def __init__(self, app: Any, token: str | None, on_reject: Callable[[], None] | None = None):
        self.app = app
        self.token = None if token is None else str(token).encode()
        self.on_reject = on_reject

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self.token is None:
            return True
        for k, v in headers:
            if k == b"authorization":
                scheme, _, cred = v.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(cred.strip(), self.token)
        return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or not scope["path"].startswith(PROTECTED)
                or self.allowed(scope.get("headers", []))):
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject()
        more, total = True, 0
        while more and total < 64_000_000:  # let a sending client finish, then read the answer
            msg = await receive()
            if msg["type"] != "http.request":
                break
            total += len(msg.get("body", b""))
            more = msg.get("more_body", False)
        body = json.dumps({"status": 401, "error": "unauthorized",
                           "detail": "send the server's token as 'Authorization: Bearer <token>'"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
