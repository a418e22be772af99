"""Fixtures of the service tests: real photos, encoded uploads, an in-process client and, for
the browser tests, a real server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np
import pytest

from tmatch.data.samples import load_photo
from tmatch.serve import ServeConfig, create_app

#: where the template is cut from the astronaut photo (x, y, w, h)
BOX = (150, 100, 110, 120)


def encode(rgb: np.ndarray, ext: str = ".png") -> bytes:
    """``(H, W, 3)`` RGB uint8 → file bytes in the format of ``ext``."""
    return cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return load_photo("astronaut")


@pytest.fixture(scope="session")
def template(photo) -> np.ndarray:
    x, y, w, h = BOX
    return np.ascontiguousarray(photo[y:y + h, x:x + w])


@pytest.fixture(scope="session")
def files(photo, template) -> dict:
    """Multipart ``files=`` for ``/v1/match``: a PNG template and a JPEG image."""
    return {"template": ("template.png", encode(template), "image/png"),
            "image": ("astronaut.jpg", encode(photo, ".jpg"), "image/jpeg")}


def make_client(**overrides):
    from fastapi.testclient import TestClient

    cfg = dict(method="sift", workers=2, queue=4)
    cfg.update(overrides)
    return TestClient(create_app(ServeConfig(**cfg)))


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving an app in a background thread, on 127.0.0.1 and a free port."""

    def __init__(self, config: ServeConfig):
        import uvicorn

        from tmatch.serve.server import uvicorn_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(create_app(config), config, port=self.port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_server():
    with LiveServer(ServeConfig(method="sift", workers=2, queue=8)) as s:
        yield s
