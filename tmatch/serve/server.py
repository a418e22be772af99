"""The HTTP server of ``tmatch serve``: uvicorn, its h11 protocol given deadlines, and a cap
on concurrent connections (:func:`uvicorn_config`).

uvicorn times out an idle keep-alive connection, but not a client that sends its request head
a byte at a time (each byte resets the keep-alive timer) nor one that stops sending before the
end of the body its ``Content-Length`` announces: such connections stay open for ever, and a
few hundred of them hold every socket the server has. :func:`timed_protocol` returns the
protocol class that closes them:

- **head deadline**: a request's head (request line and headers) must arrive whole within
  ``head_timeout`` seconds of the connection opening, or of the previous response on a
  keep-alive connection;
- **body idle timeout**: while a body is being received, no more than ``body_timeout``
  seconds may pass without a byte of it.

Either way the client gets ``408 Request Timeout`` (``{"status": 408, "error": "timeout",
"detail": ...}``, the service's error shape) and the connection is closed. The cap on concurrent connections is
uvicorn's own ``limit_concurrency`` (requests beyond it are answered 503).

>>> from tmatch.serve import ServeConfig, create_app
>>> cfg = ServeConfig(method="sift", workers=1, warmup=False, head_timeout=2.0)
>>> uc = uvicorn_config(create_app(cfg), cfg, port=8123)
>>> uc.http.head_timeout, uc.http.body_timeout, uc.limit_concurrency
(2.0, 15.0, 256)
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    import uvicorn

    from tmatch.serve.config import ServeConfig

#: seconds for a request head to arrive whole.
HEAD_TIMEOUT = 10.0
#: seconds a request body may pause.
BODY_TIMEOUT = 15.0


def _timeout_response(message: str) -> bytes:
    body = json.dumps({"status": 408, "error": "timeout", "detail": message}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


class TimedH11Protocol(H11Protocol):
    """:class:`H11Protocol` with a head deadline and a body idle timeout (class attributes
    ``head_timeout`` and ``body_timeout``, seconds; set by :func:`timed_protocol`)."""

    head_timeout: float = HEAD_TIMEOUT
    body_timeout: float = BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting: str | None = None  # "head" or "body": what the deadline is for

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._waiting = None, None

    def _follow(self) -> None:
        """Arm or clear the deadline for what the connection now waits for from the client."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._waiting != "head":  # a deadline from the start of the head, not per byte
                self._arm("head", self.head_timeout)
        elif state is h11.SEND_BODY:
            self._arm("body", self.body_timeout)  # idle time: re-armed at every piece of body
        else:
            self._disarm()

    def _expired(self) -> None:
        what, self._deadline, self._waiting = self._waiting, None, None
        if self.transport.is_closing():
            return
        if what == "body" and self.flow.read_paused:  # the server, not the client, holds the body up
            self._arm("body", self.body_timeout)
            return
        if what == "head":
            msg = f"the request head did not arrive within {self.head_timeout:g} s"
        else:
            msg = f"the request body paused for over {self.body_timeout:g} s"
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # nothing of a response sent yet
            self.transport.write(_timeout_response(msg))
        self.logger.info("closing a connection: %s", msg)
        self.transport.close()  # connection_lost tells a waiting request it was disconnected

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def timed_protocol(head_timeout: float = HEAD_TIMEOUT, body_timeout: float = BODY_TIMEOUT
                   ) -> type[TimedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these deadlines (seconds)."""
    if not (head_timeout > 0 and body_timeout > 0):
        raise ValueError("head_timeout and body_timeout must be positive")
    return type("TimedH11Protocol", (TimedH11Protocol,),
                {"head_timeout": float(head_timeout), "body_timeout": float(body_timeout)})


def uvicorn_config(app: Any, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000,
                   log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn configuration ``tmatch serve`` runs ``app`` with: the deadlines and the
    connection cap of ``config``, idle keep-alive connections closed after 5 s, a graceful
    shutdown of at most 5 s."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          http=timed_protocol(config.head_timeout, config.body_timeout),
                          limit_concurrency=int(config.max_connections), timeout_keep_alive=5,
                          timeout_graceful_shutdown=5)
