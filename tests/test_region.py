"""A search region in the image (issue 23 item 10, pyautogui's ``region=``): only that part is
searched, the answer comes back in the whole image's pixels; the same from Python, the CLI (one
pair, --all, a batch) and the service."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tmatch
from tmatch.errors import InputError
from tmatch.region import clip_region, parse_region

#: where the logo goes: twice, left and right (x, y)
LEFT, RIGHT = (40, 60), (300, 150)


@pytest.fixture(scope="module")
def pair(astronaut, coffee):
    """A 480x360 scene (blurred coffee photo) holding the same 80x70 astronaut crop twice."""
    scene = cv2.resize(cv2.GaussianBlur(coffee, (9, 9), 0), (480, 360))
    template = np.ascontiguousarray(astronaut[110:180, 170:250])
    for x, y in (LEFT, RIGHT):
        scene[y:y + 70, x:x + 80] = template
    return template, scene


def test_clip_and_parse():
    assert parse_region(" 1, 2 ,3,4") == (1, 2, 3, 4)
    assert clip_region((-10, -10, 30, 30), (100, 200)) == (0, 0, 20, 20)
    assert clip_region((150, 80, 500, 500), (100, 200)) == (150, 80, 50, 20)
    for bad in ((1, 2, 3), (0, 0, 0, 5), (0, 0, 2.5, 5), (0, 0, float("nan"), 5), "abc"):
        with pytest.raises(InputError):
            clip_region(bad, (100, 200))
    with pytest.raises(InputError, match="lies outside the 200x100 image"):
        clip_region((200, 0, 10, 10), (100, 200))


@pytest.mark.parametrize("method", ["ncc", "sift", "hybrid"])
def test_the_region_picks_which_copy_is_found_and_answers_in_image_pixels(pair, method):
    template, scene = pair
    m = tmatch.load_matcher(method)
    for (x, y) in (LEFT, RIGHT):
        r = m.match(template, scene, region=(x - 30, y - 25, 150, 130))
        assert r.found, (method, x, y)
        bx, by, bw, bh = r.box
        assert abs(bx - x) <= 2 and abs(by - y) <= 2 and abs(bw - 80) <= 3 and abs(bh - 70) <= 3, r.box
        assert r.mask.shape == scene.shape[:2] and r.mask[y + 35, x + 40]
        if r.homography is not None:  # maps the template's centre onto the copy's centre
            c = r.homography @ np.array([40.0, 35.0, 1.0])
            assert np.allclose(c[:2] / c[2], (x + 40, y + 35), atol=2.5)


@pytest.mark.parametrize("method", ["ncc", "sift", "hybrid"])
def test_a_region_without_the_template_is_absent_at_full_size(pair, method):
    template, scene = pair
    r = tmatch.load_matcher(method).match(template, scene, region=(180, 0, 100, 360))  # between the copies
    assert not r.found and r.mask.shape == scene.shape[:2] and not r.mask.any()


def test_match_all_keeps_to_the_region(pair):
    template, scene = pair
    m = tmatch.load_matcher("ncc", threshold=0.8)
    assert len(m.match_all(template, scene)) == 2
    inside = m.match_all(template, scene, region=(250, 100, 230, 260))
    assert [r.box[:2] for r in inside] == [RIGHT]


def test_match_many_gives_an_image_the_region_misses_an_error_row(pair):
    template, scene = pair
    small = np.ascontiguousarray(scene[:100, :100])
    out = tmatch.load_matcher("ncc").match_many(template, [scene, small], region=(250, 100, 230, 260))
    assert out[0].found and out[0].box[:2] == RIGHT
    assert out[1].error and "lies outside" in out[1].error


def test_cli_one_pair_all_and_batch(pair, tmp_path):
    template, scene = pair
    t, s = tmp_path / "t.png", tmp_path / "shots" / "s.png"
    s.parent.mkdir()
    cv2.imwrite(str(t), template[:, :, ::-1])
    cv2.imwrite(str(s), scene[:, :, ::-1])

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tmatch", "match", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    r = run(t, s, "-m", "ncc", "--region", "250,100,230,260", "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["box"][:2] == list(RIGHT)
    r = run(t, s, "-m", "ncc", "--threshold", "0.8", "--all", "--region", "0,0,240,360", "--json", "-")
    assert [d["box"][:2] for d in json.loads(r.stdout)] == [list(LEFT)]
    save = tmp_path / "rows.jsonl"
    r = run(t, s.parent, "-m", "ncc", "--region", "250,100,230,260", "--save", save)
    assert r.returncode == 0, r.stderr
    row = json.loads(save.read_text().splitlines()[0])
    assert row["found"] and row["box"][:2] == list(RIGHT)
    r = run(t, s.parent, "-m", "ncc", "--region", "0,0,240,360", "--save", save)  # another question
    assert r.returncode == 2 and "region" in r.stderr  # is not mixed into the same file


def test_service_region_field(pair):
    pytest.importorskip("fastapi")
    from tests.serve.conftest import encode, make_client

    template, scene = pair
    files = {"template": ("t.png", encode(template), "image/png"), "image": ("s.png", encode(scene), "image/png")}
    with make_client(method="ncc") as client:
        r = client.post("/v1/match?mask=false", files=files, data={"region": "250,100,230,260"})
        assert r.status_code == 200, r.text
        assert r.json()["box"][:2] == list(RIGHT)
        r = client.post("/v1/match", files=files, data={"region": "1,2,3"})
        assert r.status_code == 422 and "x,y,w,h" in r.json()["detail"]
        r = client.post("/v1/match", files=files, data={"region": "900,900,10,10"})
        assert r.status_code == 422 and "lies outside" in r.json()["detail"]
        tid = client.post("/v1/templates", files={"template": files["template"]}).json()["id"]
        r = client.post(f"/v1/templates/{tid}/match?mask=false", files={"image": files["image"]},
                        data={"region": "0,0,240,360"})
        assert r.status_code == 200 and r.json()["box"][:2] == list(LEFT)
