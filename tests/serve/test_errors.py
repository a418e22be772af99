"""Bad input gets a clear JSON error with the right status, never a 500."""

from __future__ import annotations

import struct
import threading
import time
import zlib

import numpy as np
import pytest

from tests.serve.conftest import encode, make_client


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` × ``height`` RGB pixels but holds almost none (a
    decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def check_error(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and body["error"] == code and body["detail"]


@pytest.mark.parametrize("payload", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
                                     b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"])
def test_unreadable_upload_is_400(client, files, payload):
    r = client.post("/v1/match", files={"template": ("t.png", payload), "image": files["image"]})
    check_error(r, 400, "bad_image")


def test_truncated_image_is_400(client, files, photo):
    data = encode(photo, ".jpg")
    r = client.post("/v1/match", files={"template": files["template"], "image": ("i.jpg", data[:300])})
    check_error(r, 400, "bad_image")


def test_too_many_bytes_is_413(files, photo):
    with make_client(max_bytes=100_000, workers=1) as c:
        big = encode(photo, ".png")  # ~500 kB
        check_error(c.post("/v1/match", files={"template": files["template"], "image": ("i.png", big)}),
                    413, "too_large")
        r = c.post("/v1/match", content=b"x" * 1_500_000, headers={"content-type": "multipart/form-data; boundary=x"})
        check_error(r, 413, "too_large")


def test_too_many_pixels_is_413_before_decoding(client, files):
    with make_client(max_pixels=100_000, workers=1) as c:
        r = c.post("/v1/match", files={"template": files["template"],
                                        "image": ("i.png", encode(np.zeros((400, 400, 3), np.uint8)))})
        check_error(r, 413, "too_large")
    r = client.post("/v1/match", files={"template": files["template"], "image": ("bomb.png", png_header(50_000, 1_000))})
    check_error(r, 413, "too_large")
    r = client.post("/v1/match", files={"template": files["template"], "image": ("bomb.png", png_header(100_000, 100_000))})
    check_error(r, 413, "too_large")


def test_unknown_method_is_422(client, files):
    check_error(client.post("/v1/match", files=files, data={"method": "magic"}), 422, "unknown_method")
    check_error(client.post("/v1/templates", files={"template": files["template"]}, data={"method": "magic"}),
                422, "unknown_method")


@pytest.mark.parametrize("options", ['{"ratio": "high"}', '{"no_such_option": 1}', "ratio=0.8", "[1, 2]",
                                     '{"weights": "/etc/passwd"}', '{"scales": [0.0, 1.0]}',
                                     '{"rotations": "sideways"}'])
def test_bad_option_is_422(client, files, options):
    method = "ncc" if "scales" in options else "neural" if "rotations" in options else "sift"
    r = client.post("/v1/match", files=files, data={"method": method, "options": options})
    check_error(r, 422, "bad_option")


def test_missing_upload_is_422(client, files):
    check_error(client.post("/v1/match", files={"image": files["image"]}), 422, "invalid_request")


def test_template_larger_than_the_image_is_matched_not_an_error(client, photo, template):
    r = client.post("/v1/match", files={"template": ("t.png", encode(photo)), "image": ("i.png", encode(template))})
    assert r.status_code == 200, r.text
    assert r.json()["found"] is False and r.json()["image_size"] == list(template.shape[:2])


def test_tiny_template_is_a_clear_4xx(client, files, photo):
    r = client.post("/v1/match", files={"template": ("t.png", encode(photo[:2, :2])), "image": files["image"]})
    check_error(r, 422, "unmatchable")


def test_unknown_routes_and_verbs_answer_json(client):
    check_error(client.get("/v1/nothing"), 404, "not_found")
    check_error(client.get("/v1/match"), 405, "method_not_allowed")


def test_token_is_required_on_the_api_only(files):
    with make_client(token="s3cret", workers=1) as c:
        check_error(c.post("/v1/match", files=files), 401, "unauthorized")
        check_error(c.get("/v1/methods", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        check_error(c.get("/metrics", headers={"Authorization": "Basic s3cret"}), 401, "unauthorized")
        assert c.post("/v1/match", files=files, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200
        assert c.get("/healthz").json()["auth"] is True


def test_full_queue_answers_503_with_retry_after_and_drops_nothing(files):
    with make_client(workers=1, queue=1) as c:
        pool = c.app.state.pool
        gate = threading.Event()
        held = [pool.submit(lambda w: gate.wait(30)) for _ in range(2)]  # one running, one waiting
        deadline = time.monotonic() + 10
        while pool.running < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            r = c.post("/v1/match", files=files)
            check_error(r, 503, "busy")
            assert int(r.headers["retry-after"]) >= 1
            assert c.get("/healthz").json()["queued"] == 1
        finally:
            gate.set()
        assert all(f.result(timeout=30) for f in held)  # the admitted jobs all ran
        assert c.post("/v1/match", files=files).status_code == 200
        assert 'tmatch_errors_total{code="busy"} 1.0' in c.get("/metrics").text


def test_server_never_opens_a_path_named_in_a_request(client, files):
    # a form field holding a path is not a file: the upload fields must be files
    r = client.post("/v1/match", data={"template": "/etc/hostname", "image": "/etc/hostname"})
    assert r.status_code == 422
    r = client.post("/v1/match", files=files, data={"method": "neural", "options": '{"weights": "/etc/hostname"}'})
    check_error(r, 422, "bad_option")


@pytest.mark.parametrize("method", ["akaze", "orb", "sift", "ncc"])
def test_one_pixel_high_template_is_422_before_any_native_code(client, files, photo, method):
    # AKAZE's detector corrupts the heap on a 1-pixel-high picture: it must never reach it
    r = client.post("/v1/match", data={"method": method},
                    files={"template": ("t.png", encode(photo[:1, :50])), "image": files["image"]})
    check_error(r, 422, "unmatchable")
    r = client.post("/v1/templates", data={"method": method}, files={"template": ("t.png", encode(photo[:1, :50]))})
    check_error(r, 422, "unmatchable")


def _pil_bytes(arr: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    import io

    from PIL import Image

    im = Image.fromarray(arr)
    buf = io.BytesIO()
    (im.convert(mode) if mode else im).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["png16", "gray", "rgba", "gif", "tiff", "webp", "bmp", "cmyk-jpeg"])
def test_common_image_formats_are_read(client, template, photo, kind):
    import cv2

    data = {
        "png16": lambda: cv2.imencode(".png", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)[1].tobytes(),
        "gray": lambda: _pil_bytes(photo, "PNG", "L"),
        "rgba": lambda: _pil_bytes(photo, "PNG", "RGBA"),
        "gif": lambda: _pil_bytes(photo, "GIF"),
        "tiff": lambda: _pil_bytes(photo, "TIFF"),
        "webp": lambda: _pil_bytes(photo, "WEBP"),
        "bmp": lambda: _pil_bytes(photo, "BMP"),
        "cmyk-jpeg": lambda: _pil_bytes(photo, "JPEG", "CMYK"),
    }[kind]()
    r = client.post("/v1/match?mask=false", data={"method": "ncc"},
                    files={"template": ("t.png", encode(template)), "image": (f"i.{kind}", data)})
    assert r.status_code == 200, r.text
    assert r.json()["image_size"] == [512, 512] and r.json()["found"]


def test_a_method_without_installed_weights_is_a_422_that_tells_the_operators_step(client, files):
    r = client.post("/v1/match", files=files, data={"method": "dual-unet"})  # ships no weights
    if r.status_code == 200:
        pytest.skip("dual-unet weights are installed here")
    check_error(r, 422, "unavailable_method")
    detail = r.json()["detail"]
    assert "tmatch serve --weights-for dual-unet=PATH" in detail  # what the operator can do
    assert "allow_untrained" not in detail and "weights=PATH" not in detail  # requests cannot
    assert "tmatch/weights" not in detail  # no server paths


def test_weights_the_operator_gives_serve_requests_for_that_method(tmp_path, files):
    from tmatch.models import ModelConfig, build_model
    from tmatch.models.checkpoint import save_checkpoint

    cfg = ModelConfig(arch="dual-unet", input_size=64, template_size=32, pretrained=False)
    path = save_checkpoint(tmp_path / "dual.safetensors", build_model(cfg).eval(), cfg)
    with make_client(weights={"dual-unet": str(path)}) as client:
        r = client.post("/v1/match", files=files, data={"method": "dual-unet"})
        assert r.status_code == 200, r.text
        assert r.json()["method"] == "dual-unet"
        r = client.post("/v1/match", files=files,  # a request still cannot pick a file
                        data={"method": "dual-unet", "options": '{"weights": "/etc/passwd"}'})
        check_error(r, 422, "bad_option")


def test_a_huge_rotation_list_is_422_before_any_work(files):
    """The issue's 60 KB request (rotations 0..359 thirty times) once grew the server to 23.5 GB."""
    import json
    import resource

    rotations = json.dumps({"rotations": [a % 360 for a in range(360 * 30)]})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with make_client(method="neural") as client:
        r = client.post("/v1/match", files=files, data={"method": "neural", "options": rotations})
    check_error(r, 422, "bad_option")
    assert "at most 72" in r.text
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB: no runaway
