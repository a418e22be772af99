"""Checks run inside the light install (``pip install .``, no extras) by ``.ci/run`` and by
``tests/test_light_install.py``: torch is absent, yet ``tmatch match`` finds a template with
``neural``, ``hybrid`` and ``sift``, a batch writes its results file, ``tmatch demo`` (the
README's main job, damaged cases included) and ``tmatch video`` run, and a matcher that needs
torch says which extra to install.

    .venv-light/bin/python tests/light_install_check.py
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def tmatch(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tmatch")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise SystemExit(f"tmatch {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()[-400:]}")
    return p


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        raise SystemExit("torch is installed here: this is not a light install")
    import cv2
    from skimage import data

    tmp = Path(tempfile.mkdtemp())
    try:
        img = data.astronaut()
        (tmp / "icons").mkdir()
        (tmp / "shots").mkdir()
        cv2.imwrite(str(tmp / "icons" / "face.png"), cv2.cvtColor(img[30:230, 150:350], cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp / "shots" / "astronaut.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp / "shots" / "coffee.png"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
        for method in ("neural", "hybrid", "sift"):
            p = tmatch("match", str(tmp / "icons" / "face.png"), str(tmp / "shots" / "astronaut.png"), "-m", method,
                       "--json", "-")
            d = json.loads(p.stdout)
            x, y, w, h = d["box"]
            assert d["found"] and abs(x - 150) <= 6 and abs(y - 30) <= 6, (method, d["box"])
            print(f"light install: {method} found the template at {d['box']} in {d['ms']:.0f} ms")
        tmatch("match", str(tmp / "icons"), str(tmp / "shots"), "--save", str(tmp / "r.csv"), "--no-progress")
        assert len((tmp / "r.csv").read_text().splitlines()) == 3
        p = tmatch("demo", "--methods", "sift,hybrid", "--cases", "2", "--out", str(tmp / "demo"))
        assert "warp" in p.stdout and "skipping" not in p.stdout, p.stdout[-600:]
        print("light install: tmatch demo ran every protocol")
        frames = tmp / "frames"
        frames.mkdir()
        for i in range(4):  # the face moving right over the coffee photo
            f = cv2.resize(data.coffee(), (480, 360))
            f[60:260, 40 + 30 * i:240 + 30 * i] = img[30:230, 150:350]
            cv2.imwrite(str(frames / f"f{i:02d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        tmatch("video", str(frames), "--template", str(tmp / "icons" / "face.png"), "-m", "sift",
               "--jsonl", str(tmp / "v.jsonl"), "--out", str(tmp / "v.mp4"))
        lines = [json.loads(x) for x in (tmp / "v.jsonl").read_text().splitlines()]
        assert sum(bool(x.get("found")) for x in lines) == 4, lines
        print("light install: tmatch video found the template in 4 of 4 frames")
        p = tmatch("match", str(tmp / "icons" / "face.png"), str(tmp / "shots" / "astronaut.png"), "-m", "dual-unet",
                   ok=False)
        assert p.returncode == 2 and 'tmatch[train]' in p.stderr, p.stderr
        print("light install: ok (no torch; neural, hybrid, sift, a batch, demo and video run)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
