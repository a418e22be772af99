"""Over a real socket (uvicorn on loopback): oversized bodies are answered 413, whether they
declare their length or stream in chunks, and the client reads the answer."""

from __future__ import annotations

import httpx
import pytest

from tests.serve.conftest import LiveServer, encode
from tmatch.serve import ServeConfig


@pytest.fixture(scope="module")
def small_server():
    with LiveServer(ServeConfig(method="sift", workers=1, max_bytes=100_000)) as s:
        yield s


def test_declared_length_over_the_limit_is_413(small_server):
    r = httpx.post(small_server.url + "/v1/match", content=b"\0" * 3_000_000, timeout=30,
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_chunked_body_over_the_limit_is_413(small_server):
    def chunks():
        head = b"--x\r\nContent-Disposition: form-data; name=\"template\"; filename=\"t.png\"\r\n\r\n"
        yield head
        for _ in range(40):
            yield b"\0" * 65_536

    r = httpx.post(small_server.url + "/v1/match", content=chunks(), timeout=30,
                   headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_the_server_still_answers_after_them(small_server, photo):
    small = photo[::2, ::2]  # 256 x 256, a JPEG well under the 100 kB limit
    files = {"template": ("t.png", encode(small[50:110, 75:130])), "image": ("i.jpg", encode(small, ".jpg"))}
    r = httpx.post(small_server.url + "/v1/match", files=files, timeout=30)
    assert r.status_code == 200 and r.json()["found"]
