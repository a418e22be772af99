"""The API answers as documented: matches, registered templates, listings, metrics, docs."""

from __future__ import annotations

import numpy as np

from tests.serve.conftest import BOX
from tmatch import rle


def test_match_returns_the_match_as_json(client, files):
    r = client.post("/v1/match", files=files)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["found"] is True and m["method"] == "sift"
    assert np.allclose(m["box"], BOX, atol=3)
    assert np.asarray(m["polygon"]).shape == (4, 2)
    assert np.asarray(m["homography"]).shape == (3, 3)
    assert m["ms"] > 0 and 0 < m["score"] <= 1
    mask = rle.decode(m["mask"])
    assert mask.shape == (512, 512) and abs(int(mask.sum()) - BOX[2] * BOX[3]) < 0.05 * BOX[2] * BOX[3]
    assert "queue;dur=" in r.headers["server-timing"]


def test_match_with_method_and_typed_options(client, files):
    r = client.post("/v1/match", files=files, data={"method": "ncc", "options": '{"threshold": 0.4}'})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "ncc" and r.json()["found"]


def test_match_without_mask_leaves_it_out(client, files):
    r = client.post("/v1/match?mask=false", files=files)
    assert r.status_code == 200 and "mask" not in r.json()


def test_overlay_png_returns_the_picture(client, files):
    import cv2

    r = client.post("/v1/match?overlay=png", files=files)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (512, 512, 3)
    assert r.headers["x-match-found"] == "true"


def test_registered_template_matches_many_images_then_is_deleted(client, files):
    r = client.post("/v1/templates", files={"template": files["template"]})
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["method"] == "sift" and info["size"] == [BOX[3], BOX[2]]
    for _ in range(3):  # both workers: each prepares its own copy once
        m = client.post(f"/v1/templates/{info['id']}/match", files={"image": files["image"]})
        assert m.status_code == 200 and np.allclose(m.json()["box"], BOX, atol=3)
    assert client.delete(f"/v1/templates/{info['id']}").status_code == 204
    gone = client.post(f"/v1/templates/{info['id']}/match", files={"image": files["image"]})
    assert gone.status_code == 404 and gone.json()["error"] == "unknown_template"
    assert client.delete(f"/v1/templates/{info['id']}").status_code == 404


def test_registered_template_keeps_its_method_and_options(client, files):
    r = client.post("/v1/templates", files={"template": files["template"]},
                    data={"method": "ncc", "options": '{"threshold": 0.3}'})
    assert r.status_code == 201 and r.json()["options"] == {"threshold": 0.3}
    m = client.post(f"/v1/templates/{r.json()['id']}/match", files={"image": files["image"]})
    assert m.json()["method"] == "ncc"


def test_template_store_forgets_the_least_recently_used(files):
    from tests.serve.conftest import make_client

    with make_client(templates=2, workers=1) as c:
        ids = [c.post("/v1/templates", files={"template": files["template"]}).json()["id"] for _ in range(3)]
        assert c.post(f"/v1/templates/{ids[0]}/match", files={"image": files["image"]}).status_code == 404
        assert c.post(f"/v1/templates/{ids[2]}/match", files={"image": files["image"]}).status_code == 200
        assert c.get("/healthz").json()["templates"] == 2


def test_methods_lists_every_matcher_with_its_options(client):
    import tmatch

    body = client.get("/v1/methods").json()
    assert body["default"] == "sift"
    names = [m["name"] for m in body["methods"]]
    assert names == tmatch.list_matchers()
    sift = next(m for m in body["methods"] if m["name"] == "sift")
    assert sift["options"]["ratio"]["type"] == "number"
    assert all("weights" not in m["options"] for m in body["methods"])  # never a server path


def test_healthz_reports_the_pool(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["workers"] == 2 and h["capacity"] == 6


def test_metrics_are_prometheus_text(client, files):
    client.post("/v1/match", files=files)
    client.post("/v1/match", files={"template": ("x.png", b"nope"), "image": files["image"]})
    text = client.get("/metrics").text
    assert 'tmatch_requests_total{method="POST",route="/v1/match",status="200"}' in text
    assert 'tmatch_request_duration_seconds_bucket{le="0.5",route="/v1/match"}' in text
    assert 'tmatch_errors_total{code="bad_image"}' in text
    assert "tmatch_queue_depth 0.0" in text and "tmatch_workers_busy" in text


def test_openapi_docs_are_served_without_a_cdn(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-files/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/docs-files/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/match", "/v1/templates", "/v1/templates/{template_id}/match", "/v1/methods"} <= set(paths)


def test_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="/static/app.js"' in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http" not in page.text.split("<footer>")[0].replace("http-equiv", "")  # nothing from outside


def test_sample_pairs_are_served(client):
    samples = client.get("/v1/samples").json()["samples"]
    assert {"motorcycle", "astronaut"} <= {s["id"] for s in samples}
    t = client.get(samples[0]["template"])
    i = client.get(samples[0]["image"])
    assert t.headers["content-type"] == "image/png" and i.headers["content-type"] == "image/jpeg"
    assert client.get("/v1/samples/../../etc/passwd/image.jpg").status_code == 404
    assert client.get("/v1/samples/nope/image.jpg").json()["error"] == "unknown_sample"
