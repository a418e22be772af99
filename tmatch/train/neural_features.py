"""Fine-tuning the features the ``neural`` matcher correlates, so that a template's stride-8
features peak at its true place in the search image.

The ``neural`` matcher's coarse search (:mod:`tmatch.matchers.neural.coarse`) renders the
template on a canvas (:func:`~tmatch.matchers.neural.render.render`, longer side ``coarse_side``
network px at scale 1), centres the canvas's and the search image's stride-8 features by the
image's channel means, scales them to unit length and correlates them with cell weights = the
share of each cell inside the template: a score map of mean cosines. This module trains the
EfficientNet-Lite0 stages (:func:`tmatch.models.features._stages`) on exactly that map:

- **Pairs** (:class:`PairMaker`, in :mod:`tmatch.train.neural_features_data`): a template cut from a training picture (24–160 px shorter
  side; often a plain crop, grey std 12–25) and a search view of the picture seen through any
  rotation, scale 0.4–2.5 and a mild perspective, then damaged (brightness ×0.7–1.3 ±30, blur
  σ 0–1.5, noise σ 0–8, JPEG 40–90); or a UI element of our own pages (seed 2,
  :mod:`tmatch.data.screens`) searched in the page rendered at another device scale
  (1, 1.25, 1.5, 2, and 0.5 — the scale-1 render halved — both ways). Pictures: the training
  split of the wallpapers (:func:`~tmatch.train.neural_local_data.photo_groups`, ``split(keys,
  0.8, 0)[0]``) and of the scikit-image photos the benchmark does not use, tuxpaint stamps
  (training split) pasted on them, and drawn screens (:func:`tmatch.data.text_ui.render_ui`).
- **Rendering** (:func:`sample`): the template is rendered as the matcher renders it, at the
  grid variant nearest the truth: the scale on the matcher's geometric grid (0.7 … 1.41, steps
  of 1.19, extended by the same step beyond it) and the angle on a 20° grid — the residual (up
  to ±9 %, ±10°, plus the perspective) is what the features must absorb.
- **Loss** (:func:`pair_loss`): softmax cross-entropy over the stride-8 correlation map at a
  fixed temperature, the target spread bilinearly over the 4 cells nearest the true centre;
  plus a smaller cross-entropy of the stride-4 correlation in a window around the truth (the
  refinement matches at strides 4 and 2).
- **Run** (:func:`train`): AdamW on all stages, batch norm frozen (eval mode), one thread,
  resumable checkpoints (model, optimiser, step, RNG) every few minutes, a loss curve CSV;
  :func:`export_onnx` writes the graph with the interface of ``tmatch/weights/lite0-features.onnx``.

The features are trained unprojected (40 channels): the matcher's projection
(``tmatch train --preset neural``) must be refit on the new features.

Shape letters: H×W search image, h×w template, B batch, C channels.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tmatch.files import atomic_save
from tmatch.train.neural_features_data import (  # noqa: F401 (the pairs, re-exported)
    PAGE_SCALES,
    FeaturePair,
    Pages,
    PairMaker,
    Pictures,
    Sample,
    grid_variant,
    load_pictures,
    sample,
)

if TYPE_CHECKING:
    import torch


# -------------------------------------------------------------------------------- loss
def _unit(f: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    g = f - mean
    return g / (g.norm(dim=0, keepdim=True) + 1e-6)


def _kernel(feat: torch.Tensor, mean: torch.Tensor, valid: np.ndarray) -> torch.Tensor:
    import torch

    wgt = torch.from_numpy(np.where(valid >= 0.5, valid, 0.0).astype(np.float32))
    return _unit(feat, mean) * wgt[None] / max(float(wgt.sum()), 1e-6)


def _soft_target(shape: tuple[int, int], yx: np.ndarray) -> np.ndarray:
    """Bilinear weights of the fractional cell ``yx`` over its 4 nearest cells ``(h, w)``."""
    h, w = shape
    y, x = float(np.clip(yx[0], 0, h - 1)), float(np.clip(yx[1], 0, w - 1))
    y0, x0 = min(math.floor(y), h - 1), min(math.floor(x), w - 1)
    fy, fx = y - y0, x - x0
    t = np.zeros((h, w), np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            if y0 + dy < h and x0 + dx < w:
                t[y0 + dy, x0 + dx] += wy * wx
    return t / t.sum()


def correlation(img: torch.Tensor, kern: torch.Tensor) -> torch.Tensor:
    """``(H8, W8)`` scores of the kernel ``(C, n, n)`` at every cell of ``img`` ``(C, H8, W8)``
    (its centre cell ``n // 2`` on the cell), as :func:`tmatch.models.features.correlate`."""
    import torch.nn.functional as F

    n = kern.shape[-1]
    lo, hi = n // 2, n - 1 - n // 2
    return F.conv2d(F.pad(img[None], (lo, hi, lo, hi)), kern[None])[0, 0]


@dataclass
class PairLoss:
    loss8: torch.Tensor
    loss4: torch.Tensor
    right: bool  # stride-8 peak within one cell of the truth


def pair_loss(model, s: Sample, temperature: float = 0.07, window4: int = 4) -> PairLoss:
    """Cross-entropy of the stride-8 correlation map (softmax at ``temperature``) against the
    soft true cell, and of the stride-4 map in a ``±window4`` window around the truth."""
    import torch
    import torch.nn.functional as F

    fi = model(torch.from_numpy(s.image))
    fc = model(torch.from_numpy(s.canvas))
    img8, can8 = fi[2][0], fc[2][0]
    m8 = img8.mean(dim=(1, 2), keepdim=True)
    sc8 = correlation(_unit(img8, m8), _kernel(can8, m8, s.valid[1]))
    t8 = torch.from_numpy(_soft_target(tuple(sc8.shape), s.target[1]))
    logp = F.log_softmax((sc8 / temperature).flatten(), 0)
    loss8 = -(t8.flatten() * logp).sum()
    k = int(torch.argmax(sc8))
    py, px = divmod(k, sc8.shape[1])
    right = abs(py - s.target[1][0]) <= 1.0 and abs(px - s.target[1][1]) <= 1.0
    # stride 4: a window of output cells around the truth
    img4, can4 = fi[1][0], fc[1][0]
    m4 = img4.mean(dim=(1, 2), keepdim=True)
    u4 = _unit(img4, m4)
    k4 = _kernel(can4, m4, s.valid[0])
    n = k4.shape[-1]
    lo, hi, R = n // 2, n - 1 - n // 2, window4
    H4, W4 = u4.shape[1:]
    cy = int(np.clip(round(s.target[0][0]), 0, H4 - 1))
    cx = int(np.clip(round(s.target[0][1]), 0, W4 - 1))
    pad = F.pad(u4[None], (lo + R, hi + R, lo + R, hi + R))[0]
    win = pad[:, cy:cy + 2 * R + n, cx:cx + 2 * R + n]
    sc4 = F.conv2d(win[None], k4[None])[0, 0]  # (2R+1, 2R+1): output cells cy-R .. cy+R
    t4 = torch.from_numpy(_soft_target(tuple(sc4.shape), s.target[0] - np.array([cy - R, cx - R])))
    loss4 = -(t4.flatten() * F.log_softmax((sc4 / temperature).flatten(), 0)).sum()
    return PairLoss(loss8, loss4, bool(right))


# --------------------------------------------------------------------------------- run
@dataclass
class Recipe:
    """The training recipe (written to ``recipe.json`` in the run folder)."""

    minutes: float = 70.0
    batch: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-4
    temperature: float = 0.07
    f4_weight: float = 0.3
    seed: int = 2
    page_seed: int = 2
    pages: int = 24
    checkpoint_s: float = 300.0
    threads: int = 1
    warmup_steps: int = 30
    final_lr: float = 0.1  # share of lr reached at the end (cosine over the minutes)


def learning_rate(recipe: Recipe, step: int, minutes: float) -> float:
    """Linear warm-up over ``warmup_steps``, then a cosine from ``lr`` to ``final_lr · lr``
    over the run's ``minutes`` (a time schedule: the step count of a CPU run is not known
    ahead)."""
    frac = min(1.0, max(0.0, minutes / max(recipe.minutes, 1e-9)))
    cos = recipe.final_lr + (1 - recipe.final_lr) * 0.5 * (1 + math.cos(math.pi * frac))
    return recipe.lr * cos * min(1.0, (step + 1) / max(1, recipe.warmup_steps))


def build_model():
    """The pretrained stages, batch norm frozen (eval mode), every weight trainable."""
    from tmatch.models.features import _stages

    model = _stages(True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _save(path: Path, model, opt, step: int, rng: np.random.Generator, elapsed: float) -> None:
    import torch

    state = {"model": model.state_dict(), "optim": opt.state_dict(), "step": step, "elapsed": elapsed,
             "rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state()}
    atomic_save(path, lambda tmp: torch.save(state, tmp))


def train(out: str | Path, recipe: Recipe | None = None, echo: Callable[[str], None] = print,
          pictures: Pictures | None = None) -> Path:
    """Fine-tune (or resume fine-tuning) the stages into ``out``: ``checkpoint.pt`` (model,
    optimiser, step, RNG) every ``checkpoint_s`` seconds and at the end, ``loss.csv``,
    ``recipe.json``, ``model.pt`` (the final weights). Stops after ``minutes`` of training
    (counted over resumes). Returns ``out``."""
    import torch

    recipe = recipe or Recipe()
    torch.set_num_threads(recipe.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(recipe.__dict__, indent=1))
    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    rng = np.random.default_rng(recipe.seed)
    step, elapsed = 0, 0.0
    ck = out / "checkpoint.pt"
    if ck.is_file():
        st = torch.load(ck, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        rng.bit_generator.state = json.loads(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        echo(f"resumed at step {step} ({elapsed / 60:.1f} min trained)")
    pics = pictures if pictures is not None else load_pictures(0, recipe.page_seed, recipe.pages, echo)
    maker = PairMaker(pics)
    new_csv = not (out / "loss.csv").is_file()
    with open(out / "loss.csv", "a", newline="") as fcsv:
        w = csv.writer(fcsv)
        if new_csv:
            w.writerow(["step", "minutes", "lr", "loss", "loss8", "loss4", "acc8", "acc8_small", "n_small",
                        "pairs_s"])
        t_last_ck = time.perf_counter()
        t0 = time.perf_counter() - elapsed
        while (time.perf_counter() - t0) < recipe.minutes * 60:
            ts = time.perf_counter()
            lr = learning_rate(recipe, step, (ts - t0) / 60)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            l8 = l4 = 0.0
            right, small, small_right = 0, 0, 0
            for _ in range(recipe.batch):
                smp = sample(maker(rng))
                pl = pair_loss(model, smp, recipe.temperature)
                loss = (pl.loss8 + recipe.f4_weight * pl.loss4) / recipe.batch
                loss.backward()
                l8 += pl.loss8.item() / recipe.batch
                l4 += pl.loss4.item() / recipe.batch
                right += pl.right
                if smp.size < 80:
                    small += 1
                    small_right += pl.right
            opt.step()
            step += 1
            now = time.perf_counter()
            w.writerow([step, round((now - t0) / 60, 3), f"{lr:.3g}", round(l8 + recipe.f4_weight * l4, 5),
                        round(l8, 5), round(l4, 5), right / recipe.batch, small_right / max(small, 1),
                        small, round(recipe.batch / (now - ts), 3)])
            fcsv.flush()
            if step % 20 == 0:
                echo(f"step {step} {(now - t0) / 60:.1f} min loss8 {l8:.3f} loss4 {l4:.3f} "
                     f"acc8 {right / recipe.batch:.2f}")
            if now - t_last_ck >= recipe.checkpoint_s:
                _save(ck, model, opt, step, rng, now - t0)
                t_last_ck = now
        _save(ck, model, opt, step, rng, time.perf_counter() - t0)
        torch.save(model.state_dict(), out / "model.pt")
    echo(f"done: {step} steps")
    return out


def load_trained(path: str | Path):
    """The stages with the weights of a ``checkpoint.pt`` or ``model.pt`` (eval mode)."""
    import torch

    st = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model()
    model.load_state_dict(st["model"] if "model" in st and isinstance(st["model"], dict) else st)
    return model.eval()


def export_onnx(model, path: str | Path) -> Path:
    """Write ``model``'s stages as an ONNX graph with the interface of
    ``tmatch/weights/lite0-features.onnx`` (input ``image`` ``(B, 3, H, W)``, outputs ``f2``,
    ``f4``, ``f8``, dynamic sizes, opset 17; the settings of
    :func:`tmatch.models.features.cached_graph`)."""
    import warnings

    import torch

    model = model.eval()

    def export(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(tmp), input_names=["image"],
                              output_names=["f2", "f4", "f8"], opset_version=17, dynamo=False,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "f2": {0: "batch", 2: "h2", 3: "w2"},
                                            "f4": {0: "batch", 2: "h4", 3: "w4"},
                                            "f8": {0: "batch", 2: "h8", 3: "w8"}})

    return atomic_save(Path(path), export)


def ship(model, weights_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``model``'s stages into the package as ``lite0-match.onnx`` (onnxruntime) and
    ``lite0-match.safetensors`` (the same weights, for the torch runtime): the ``neural``
    matcher's default features. Its presence head must then be refit on them
    (``tmatch train --preset neural``)."""
    from safetensors.torch import save_file

    from tmatch.models.features import SHIPPED_MATCH, SHIPPED_MATCH_WEIGHTS

    d = Path(weights_dir) if weights_dir is not None else SHIPPED_MATCH.parent
    graph = export_onnx(model, d / SHIPPED_MATCH.name)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights = atomic_save(d / SHIPPED_MATCH_WEIGHTS.name,
                          lambda tmp: save_file(state, str(tmp), metadata={"what": "lite0 stages to stride 8, "
                                                                          "fine-tuned for matching"}))
    return graph, weights


def main() -> None:  # pragma: no cover - the run's entry point
    import argparse

    ap = argparse.ArgumentParser(description="fine-tune the neural matcher's features")
    ap.add_argument("--out", default="runs/match-features")
    ap.add_argument("--minutes", type=float, default=Recipe.minutes)
    ap.add_argument("--batch", type=int, default=Recipe.batch)
    ap.add_argument("--lr", type=float, default=Recipe.lr)
    ap.add_argument("--export", action="store_true", help="only export out/checkpoint.pt to out/lite0-match.onnx")
    ap.add_argument("--ship", type=Path, default=None, metavar="DIR",
                    help="only write out/checkpoint.pt's stages as DIR/lite0-match.onnx and .safetensors")
    a = ap.parse_args()
    out = Path(a.out)
    if a.export:
        print(export_onnx(load_trained(out / "checkpoint.pt"), out / "lite0-match.onnx"))
        return
    if a.ship is not None:
        print(*ship(load_trained(out / "checkpoint.pt"), a.ship))
        return
    train(out, Recipe(minutes=a.minutes, batch=a.batch, lr=a.lr), echo=lambda m: print(m, flush=True))


if __name__ == "__main__":  # pragma: no cover
    main()
