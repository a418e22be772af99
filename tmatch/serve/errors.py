"""The service's errors: each becomes a JSON body ``{"status", "error", "detail"}``.

``error`` is a stable code a client can branch on; ``detail`` is one line for people.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered to the client with ``status`` and a JSON body.

    >>> e = ApiError(413, "too_large", "image is 30.0 MB; the limit is 20.0 MB")
    >>> e.body()["error"]
    'too_large'
    """

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = int(status)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.code, "detail": self.detail}


def bad_image(detail: str) -> ApiError:
    return ApiError(400, "bad_image", detail)


def too_large(detail: str) -> ApiError:
    return ApiError(413, "too_large", detail)


def bad_option(detail: str) -> ApiError:
    return ApiError(422, "bad_option", detail)


def busy(retry_after: int) -> ApiError:
    return ApiError(503, "busy", f"all workers are busy and the queue is full; retry in {retry_after} s",
                    headers={"Retry-After": str(int(retry_after))})
