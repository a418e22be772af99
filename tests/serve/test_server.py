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


# ---------------------------------------------------------------- slow clients, many connections
@pytest.fixture(scope="module")
def strict_server():
    with LiveServer(ServeConfig(method="sift", workers=1, head_timeout=1.0, body_timeout=1.0,
                                max_connections=4)) as s:
        yield s


def _raw(server, data: bytes):
    import socket

    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(data)
    return s


def _read_all(s) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_a_head_sent_a_byte_at_a_time_is_cut_off_with_408(strict_server):
    """Bytes that keep arriving do not extend the head's deadline (they reset uvicorn's own
    keep-alive timer: without the deadline this connection stays open for ever)."""
    import time

    s = _raw(strict_server, b"GET /healthz HTTP/1.1\r\n")
    t0 = time.monotonic()
    try:
        for c in b"Host: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
            s.sendall(bytes([c]))
            time.sleep(0.1)
    except OSError:
        pass  # closed by the server mid-trickle
    got = _read_all(s)
    assert got.startswith(b"HTTP/1.1 408") and b'"timeout"' in got
    assert time.monotonic() - t0 < 4.0
    s.close()


def test_a_body_shorter_than_its_content_length_is_cut_off_with_408(strict_server):
    s = _raw(strict_server, b"POST /v1/match HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                            b"boundary=x\r\nContent-Length: 1000\r\n\r\n--x\r\n")
    got = _read_all(s)
    assert got.startswith(b"HTTP/1.1 408") and b"body" in got
    s.close()


def test_connections_over_the_cap_get_503_and_the_server_recovers(strict_server):
    import time

    held = [_raw(strict_server, b"GET /healthz HTTP/1.1\r\n") for _ in range(4)]  # 4 slow heads
    time.sleep(0.2)
    r = httpx.get(strict_server.url + "/healthz", timeout=10)
    assert r.status_code == 503
    for s in held:  # the head deadline frees them
        assert _read_all(s).startswith(b"HTTP/1.1 408")
        s.close()
    assert httpx.get(strict_server.url + "/healthz", timeout=10).status_code == 200


def test_a_normal_keep_alive_client_is_not_cut_off(strict_server):
    import time

    with httpx.Client(base_url=strict_server.url, timeout=10) as c:
        for _ in range(3):
            assert c.get("/healthz").status_code == 200
            time.sleep(0.6)  # idle between requests, under the keep-alive timeout
