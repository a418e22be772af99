"""``tmatch.screen`` (issue 24): locate on a screenshot across display scales, the pyautogui
calls, waiting; and on a real display — a virtual X server (Debian's ``xvfb``) showing Chromium
with a page of ours at device scale 2, the element cut from the same page at scale 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tmatch import screen
from tmatch.errors import InputError
from tmatch.screen import pyautogui as pag

PAGE = """<!doctype html><html><body style="margin:0;background:#f4f5f7;font:16px sans-serif">
<div style="position:absolute;left:40px;top:30px;width:600px;color:#333">Settings — a page of ours
for the screen tests. Nothing here is the button but the button.</div>
<button id="go" style="position:absolute;left:300px;top:200px;width:120px;height:40px;
 background:#1f6feb;color:#fff;border:0;border-radius:6px;font:bold 16px sans-serif">Deploy</button>
<div style="position:absolute;left:60px;top:320px;width:90px;height:24px;background:#e33"></div>
</body></html>"""
#: the button's CSS box (x, y, w, h)
BUTTON = (300, 200, 120, 40)


def _scene(scale: float) -> np.ndarray:
    """A drawn "screen" holding the button at ``scale`` (a 1x layout scaled as a retina display draws it)."""
    w, h = int(800 * scale), int(500 * scale)
    img = np.full((h, w, 3), 244, np.uint8)
    for i in range(12):
        cv2.putText(img, f"row {i} of some settings text", (int(30 * scale), int((60 + 30 * i) * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (60, 60, 60), max(1, int(scale)), cv2.LINE_AA)
    x, y, bw, bh = (int(v * scale) for v in BUTTON)
    cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), (31, 111, 235), -1)
    cv2.putText(img, "Deploy", (x + int(22 * scale), y + int(27 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                0.7 * scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA)
    return img


def _button(scale: float) -> np.ndarray:
    x, y, w, h = (int(v * scale) for v in BUTTON)
    return np.ascontiguousarray(_scene(scale)[y - 4:y + h + 4, x - 4:x + w + 4])


@pytest.mark.parametrize("captured, shown", [(2.0, 1.0), (1.0, 2.0), (1.0, 1.0), (1.0, 1.5)])
def test_locate_finds_the_element_across_display_scales(captured, shown):
    m = screen.locate(_button(captured), screenshot=_scene(shown))
    assert m is not None
    x, y, w, h = m.box
    ex, ey, ew, eh = ((BUTTON[0] - 4) * shown, (BUTTON[1] - 4) * shown, (BUTTON[2] + 8) * shown, (BUTTON[3] + 8) * shown)
    assert abs(x - ex) <= 3 and abs(y - ey) <= 3 and abs(w - ew) <= 4 and abs(h - eh) <= 4, m.box
    assert screen.locate(_button(captured), screenshot=_scene(shown), scales=1.0) is None or captured == shown


def test_region_confidence_and_absent():
    shot = _scene(1.0)
    assert screen.locate(_button(1.0), screenshot=shot, region=(0, 0, 200, 500)) is None  # left of it
    m = screen.locate(_button(1.0), screenshot=shot, region=(250, 150, 300, 150))
    assert m is not None and m.box[:2] == (296, 196)
    other = np.ascontiguousarray(np.rot90(_button(1.0)))
    assert screen.locate(other, screenshot=shot) is None
    with pytest.raises(InputError):
        screen.locate(_button(1.0), screenshot=shot, confidence=2.0)


def test_locate_all_and_the_pyautogui_calls(monkeypatch):
    shot = _scene(1.0)
    twice = np.hstack([shot, shot])
    found = screen.locate_all(_button(1.0), screenshot=twice)
    assert sorted(m.box[0] for m in found) == [296, 1096]
    monkeypatch.setattr("tmatch.screen.search._grab_all", lambda: twice)
    box = pag.locateOnScreen(_button(2.0))
    assert isinstance(box, pag.Box) and box.width == 124 and box.left in (298, 1098)  # (240 + 8) px at 0.5
    assert pag.locateCenterOnScreen(_button(1.0)) in (pag.Point(360, 220), pag.Point(1160, 220))
    assert len(list(pag.locateAllOnScreen(_button(1.0), grayscale=True))) == 2
    with pytest.raises(pag.ImageNotFoundException):
        pag.locateOnScreen(np.ascontiguousarray(np.rot90(_button(1.0))))
    monkeypatch.setattr(pag, "USE_IMAGE_NOT_FOUND_EXCEPTION", False)
    assert pag.locateOnScreen(np.ascontiguousarray(np.rot90(_button(1.0)))) is None


def test_wait_and_wait_gone_poll_until_their_deadline(monkeypatch):
    shots = iter([_scene(1.0)[:, :250].copy()] * 3 + [_scene(1.0)] * 100)
    monkeypatch.setattr("tmatch.screen.search._grab_all", lambda: next(shots))
    m = screen.wait(_button(1.0), timeout=5, interval=0.01)
    assert m.box[:2] == (296, 196)
    t0 = time.monotonic()
    with pytest.raises(screen.NotFound):
        screen.wait_gone(_button(1.0), timeout=0.2, interval=0.05)
    assert time.monotonic() - t0 < 3


# ----------------------------------------------------------------- a real display
XVFB = shutil.which("Xvfb")
CHROMIUM = next((p for p in (os.environ.get("TMATCH_CHROMIUM"), shutil.which("chromium")) if p), None)


def _free_display() -> int:
    for n in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    pytest.skip("no free X display number")


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    if XVFB is None or CHROMIUM is None:
        pytest.skip("needs Xvfb and chromium (apt-get install xvfb chromium)")
    n = _free_display()
    proc = subprocess.Popen([XVFB, f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("Xvfb did not start")
        time.sleep(0.1)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{n}"
    yield n
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.kill()
    proc.wait()


def _show(page: Path, scale: float, profile: Path) -> subprocess.Popen:
    return subprocess.Popen([CHROMIUM, "--no-sandbox", "--disable-gpu", "--kiosk", "--no-first-run",
                             f"--user-data-dir={profile}", f"--force-device-scale-factor={scale}",
                             "--disable-dev-shm-usage", "--window-position=0,0", "--window-size=1280,800",
                             page.as_uri()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_button_cut_at_scale_1_is_located_on_a_real_2x_display(display, tmp_path):
    from playwright.sync_api import sync_playwright

    page = tmp_path / "page.html"
    page.write_text(PAGE)
    with sync_playwright() as p:  # the template: the button cut from the page rendered at scale 1
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        pg = b.new_page(viewport={"width": 800, "height": 500}, device_scale_factor=1)
        pg.goto(page.as_uri())
        png = pg.locator("#go").screenshot()
        b.close()
    template = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    chrome = _show(page, 2.0, tmp_path / "profile")
    try:
        m = None
        deadline = time.monotonic() + 40
        while m is None and time.monotonic() < deadline:
            time.sleep(0.5)
            m = screen.locate(template)
        assert m is not None, "the button never showed"
        x, y, w, h = m.box
        assert abs(w - 240) <= 6 and abs(h - 80) <= 6, m.box  # drawn at device scale 2
        shot = screen.grab()
        assert shot.shape[:2] == (800, 1280)
        blue = shot[y + h // 2, x + 10]
        assert blue[2] > 180 and blue[0] < 100, blue  # the button's colour is where we say
        box = pag.locateOnScreen(template)
        assert (box.left, box.top, box.width, box.height) == m.box
        c = pag.locateCenterOnScreen(template)
        assert c == pag.Point(x + w // 2, y + h // 2)
    finally:
        chrome.kill()
        chrome.wait()


def test_the_locate_verb_on_a_real_display(display, tmp_path, run):
    import json

    from tmatch import io

    shot_page = tmp_path / "page.html"
    shot_page.write_text(PAGE)
    chrome = _show(shot_page, 1.0, tmp_path / "profile")
    try:
        target = None
        deadline = time.monotonic() + 40
        while target is None and time.monotonic() < deadline:  # wait for the page, cut the button
            time.sleep(0.5)
            shot = screen.grab()
            blue = np.argwhere((shot[:, :, 2] > 200) & (shot[:, :, 0] < 60) & (shot[:, :, 1] > 90))
            if len(blue) > 2000:
                (y0, x0), (y1, x1) = blue.min(axis=0), blue.max(axis=0)
                target = io.write_image(tmp_path / "go.png", shot[y0:y1 + 1, x0:x1 + 1])
        assert target is not None, "the page never showed"
        r = run("locate", target, "--json", "-")
        assert r.exit_code == 0, r.stderr
        d = json.loads(r.output)
        assert d["found"] and d["box"] == [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)]
        r = run("locate", target, "--region", "0,0,100,100")
        assert r.exit_code == 1 and "not on the screen" in r.output
        r = run("locate", target, "--wait", "0.3", "--region", "0,0,100,100")
        assert r.exit_code == 1
        r = run("locate", target, "--scales", "big")
        assert r.exit_code == 2 and r.stderr.startswith("error: --scales")
    finally:
        chrome.kill()
        chrome.wait()


def test_no_display_is_one_line_and_exit_2(tmp_path, monkeypatch):
    import sys

    from tmatch import io

    t = io.write_image(tmp_path / "t.png", _button(1.0))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "-m", "tmatch", "locate", str(t)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot capture the screen" in r.stderr
