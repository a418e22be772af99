"""The page as a person uses it, in a real headless Chromium (Debian's ``chromium``, driven by
Playwright): upload two files and read the numbers; start the camera (Chromium's fake camera
playing a clip made here) and see the outline drawn within 2 s.

Skipped, with the reason, only when Chromium is missing (``.ci/run`` installs it; Playwright comes
with the ``dev`` extra).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.serve.conftest import encode

CHROMIUM = next((p for p in (os.environ.get("TMATCH_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

#: set to a path (e.g. docs/serve.png) to keep the screenshot of the upload test there.
SCREENSHOT_ENV = "TMATCH_SERVE_SCREENSHOT"


def launch(playwright, *args: str):
    return playwright.chromium.launch(executable_path=CHROMIUM,
                                      args=["--no-sandbox", "--disable-dev-shm-usage", *args])


def launch_with_camera(playwright, clip):
    """Chromium whose camera plays ``clip`` (a .y4m), with the permission prompt answered."""
    return launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={clip}")


@pytest.fixture(scope="module")
def playwright():
    try:  # chromium is here, so a missing driver is a broken set-up, not a reason to skip
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def pair(tmp_path_factory, live_server) -> tuple[Path, Path]:
    """The motorcycle sample pair as files: the engine cut from the left photo, the right photo."""
    d = tmp_path_factory.mktemp("pair")
    t, i = d / "engine.png", d / "motorcycle.jpg"
    t.write_bytes(httpx.get(f"{live_server.url}/v1/samples/motorcycle/template.png").content)
    i.write_bytes(httpx.get(f"{live_server.url}/v1/samples/motorcycle/image.jpg").content)
    return t, i


def save_screenshot(page, path: Path) -> None:
    """A small PNG of the page (palette colours, 900 px wide) for the README."""
    from PIL import Image

    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw), full_page=False)
    with Image.open(raw) as im:
        w, h = im.size
        small = im.convert("RGB").resize((900, round(h * 900 / w)), Image.LANCZOS)
        small.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()


def test_upload_two_files_shows_the_outline_and_the_apis_numbers(playwright, live_server, pair, tmp_path):
    template, image = pair
    api = httpx.post(f"{live_server.url}/v1/match", timeout=60,
                     files={"template": template.open("rb"), "image": image.open("rb")}).json()
    assert api["found"], api

    browser = launch(playwright)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 960})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        assert page.input_value("#method") == "sift"
        page.set_input_files("#template-input", str(template))
        page.set_input_files("#image-input", str(image))
        page.wait_for_selector("body[data-state='done']", timeout=20_000)

        assert page.inner_text("#result-found") == "yes"
        assert page.inner_text("#result-score") == f"{api['score']:.3f}"
        assert page.inner_text("#result-box") == ", ".join(str(v) for v in api["box"])
        assert page.inner_text("#result-method") == "sift"
        assert float(page.inner_text("#result-ms")) > 0
        shown = json.loads(page.text_content("#result-json"))
        assert np.allclose(shown["polygon"], api["polygon"], atol=1e-3)
        # the outline is drawn: green pixels on the canvas along the polygon's top edge
        (x0, y0), (x1, _) = api["polygon"][0], api["polygon"][1]
        green = page.evaluate("""([x, y]) => {
            const d = document.getElementById('result-canvas').getContext('2d')
                .getImageData(Math.round(x), Math.round(y) - 2, 1, 5).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i+1] > 180 && d[i] < 120) n++; return n; }""",
                              [(x0 + x1) / 2, y0])
        assert green >= 1
        assert not errors

        shot = tmp_path / "serve.png"
        save_screenshot(page, shot)
        assert shot.stat().st_size > 10_000
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])
    finally:
        browser.close()


def test_sample_pair_runs_without_any_file(playwright, live_server):
    browser = launch(playwright)
    try:
        page = browser.new_page()
        page.goto(live_server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        page.select_option("#sample", "astronaut")
        page.wait_for_selector("body[data-state='done']", timeout=20_000)
        assert page.inner_text("#result-found") == "yes"
    finally:
        browser.close()


def _page(browser, live_server):
    page = browser.new_page(viewport={"width": 1100, "height": 960}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=10_000)
    return page, errors


def test_a_bad_file_clears_the_previous_result(playwright, live_server, pair, tmp_path):
    """Issue 23 item 12: after a bad file the previous result stayed visible under the error."""
    template, image = pair
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    browser = launch(playwright)
    try:
        page, errors = _page(browser, live_server)
        page.set_input_files("#template-input", str(template))
        page.set_input_files("#image-input", str(image))
        page.wait_for_selector("body[data-state='done']", timeout=20_000)
        assert page.is_visible("#result") and page.inner_text("#result-found") == "yes"
        page.set_input_files("#image-input", str(junk))
        page.wait_for_selector("body[data-state='error']", timeout=20_000)
        assert not page.is_visible("#result")  # no stale answer under the error
        assert page.text_content("#result-json") == ""
        assert "image" in page.inner_text("#status").lower()
        assert not errors
    finally:
        browser.close()


def test_several_templates_at_once_zoom_and_downloads(playwright, live_server, pair, photo, tmp_path):
    template, image = pair
    other = tmp_path / "face.png"  # a second template, absent from the motorcycle photo
    other.write_bytes(encode(np.ascontiguousarray(photo[60:200, 170:300])))
    api = httpx.post(f"{live_server.url}/v1/match", timeout=60,
                     files={"template": template.open("rb"), "image": image.open("rb")}).json()
    browser = launch(playwright)
    try:
        page, errors = _page(browser, live_server)
        page.set_input_files("#template-input", [str(template), str(other)])
        page.set_input_files("#image-input", str(image))
        page.wait_for_selector("body[data-results='2']", timeout=40_000)
        rows = page.eval_on_selector_all("#result-table tbody tr",
                                         "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))")
        assert [r[0] for r in rows] == ["engine.png", "face.png"]
        assert rows[0][1] == "yes" and rows[0][4] == ", ".join(str(v) for v in api["box"])
        assert page.inner_text("#result-found").endswith("of 2")
        with page.expect_download() as dl:
            page.click("#download-json")
        saved = json.loads(Path(dl.value.path()).read_text())
        assert [a["template"] for a in saved] == ["engine.png", "face.png"]
        assert saved[0]["mask"]["counts"]  # the whole answer, masks included
        with page.expect_download() as dl:
            page.click("#download-png")
        png = cv2.imread(dl.value.path())
        assert png is not None and png.shape[:2] == tuple(api["image_size"])
        fit = page.evaluate("document.getElementById('result-canvas').getBoundingClientRect().width")
        page.select_option("#zoom", "2")
        zoomed = page.evaluate("document.getElementById('result-canvas').getBoundingClientRect().width")
        assert zoomed == pytest.approx(2 * api["image_size"][1], abs=2) and zoomed > fit
        page.click("#result-canvas")  # a click goes back to fit
        assert page.input_value("#zoom") == "fit"
        assert not errors
    finally:
        browser.close()


def test_the_search_region_is_sent_with_the_request(playwright, live_server, pair):
    template, image = pair
    browser = launch(playwright)
    try:
        page, errors = _page(browser, live_server)
        page.fill("#region", "0,0,40,40")  # a corner without the engine
        page.set_input_files("#template-input", str(template))
        page.set_input_files("#image-input", str(image))
        page.wait_for_selector("body[data-state='done']", timeout=20_000)
        assert page.inner_text("#result-found") == "no"
        page.fill("#region", "1,2,3")
        page.dispatch_event("#region", "change")
        page.wait_for_selector("body[data-state='error']", timeout=20_000)
        assert "x,y,w,h" in page.inner_text("#status")
        assert not errors
    finally:
        browser.close()


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """RGB frames ``(H, W, 3)`` (even sides) → a YUV4MPEG2 4:2:0 clip Chromium's fake camera plays."""
    h, w = frames[0].shape[:2]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory, photo) -> tuple[Path, Path]:
    """A 2 s clip of our own: the astronaut photo panning slowly under a 320×240 window; and the
    template, the face cut from the first frame."""
    d = tmp_path_factory.mktemp("camera")
    frames = [np.ascontiguousarray(photo[60 + k:300 + k, 80 + 2 * k:400 + 2 * k]) for k in range(30)]
    clip = write_y4m(d / "clip.y4m", frames)
    face = frames[0][20:150, 60:190]
    tpl = d / "face.png"
    tpl.write_bytes(encode(face))
    return clip, tpl


def test_live_camera_draws_the_outline_within_2_s(playwright, live_server, camera_clip):
    clip, template = camera_clip
    browser = launch_with_camera(playwright, clip)
    try:
        context = browser.new_context()
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        page.set_input_files("#template-input", str(template))
        t0 = time.monotonic()
        page.click("#live-start")
        page.wait_for_selector("body[data-live-outline]", timeout=2_000)
        elapsed = time.monotonic() - t0
        assert elapsed < 2.0
        live = page.evaluate("({frames: tmatchLive.frames, first: tmatchLive.firstOutlineMs,"
                             " w: document.getElementById('live-video').videoWidth})")
        assert live["w"] == 320 and live["frames"] >= 1 and live["first"] < 2000
        assert page.inner_text("#live-found") == "yes"
        # keeps going: more matches come back while the clip plays, one request at a time
        page.wait_for_function("tmatchLive.frames >= 3", timeout=5_000)
        page.click("#live-stop")
        assert not errors
    finally:
        browser.close()


def test_live_template_picked_by_dragging_a_box_on_the_video(playwright, live_server, camera_clip):
    clip, _ = camera_clip
    browser = launch_with_camera(playwright, clip)
    try:
        page = browser.new_page()
        page.goto(live_server.url + "/")
        page.wait_for_selector("body[data-ready='1']", timeout=10_000)
        page.click("#live-start")
        page.wait_for_function("document.getElementById('live-video').videoWidth > 0", timeout=5_000)
        box = page.locator("#live-canvas").bounding_box()
        sx, sy = box["width"] / 320, box["height"] / 240  # canvas pixels are video pixels
        page.mouse.move(box["x"] + 60 * sx, box["y"] + 20 * sy)
        page.mouse.down()
        page.mouse.move(box["x"] + 190 * sx, box["y"] + 150 * sy, steps=5)
        page.mouse.up()
        page.wait_for_selector("#template-preview:not([hidden])", timeout=2_000)
        page.wait_for_selector("body[data-live-outline]", timeout=5_000)
        assert page.inner_text("#live-found") == "yes"
    finally:
        browser.close()


def test_page_asks_for_the_token_when_the_server_wants_one(playwright, pair):
    from tests.serve.conftest import LiveServer
    from tmatch.serve import ServeConfig

    template, image = pair
    with LiveServer(ServeConfig(method="sift", workers=1, token="open-sesame")) as server:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("#token-row:not([hidden])", timeout=10_000)
            assert "token" in page.inner_text("#status")
            page.fill("#token", "open-sesame")
            page.dispatch_event("#token", "change")
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            page.set_input_files("#template-input", str(template))
            page.set_input_files("#image-input", str(image))
            page.wait_for_selector("body[data-state='done']", timeout=20_000)
            assert page.inner_text("#result-found") == "yes"
        finally:
            browser.close()
