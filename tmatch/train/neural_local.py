"""Training of the ``neural-local`` matcher: its patch descriptor, then its presence head.

``tmatch train --preset neural-local`` runs :func:`train_descriptor`:

1. **Photos** from the config's sources (wallpaper folders, tuxpaint cut-outs pasted on them)
   and screens drawn by :func:`tmatch.data.text_ui.render_ui`, split into training and
   validation by photo (never by pair).
2. **Patch pairs** (:func:`tmatch.train.neural_local_data.mine_patches`): each photo is seen
   through a random homography —
   full-circle rotation, scale 0.25×–4×, corner jitter of a strong viewpoint change — with
   lighting changes, blur, noise and JPEG; keypoints detected in both views are paired with
   :func:`tmatch.matchers.neural_local.supervision.correspondences` and their rectified
   patches kept. Cached under ``$TMATCH_CACHE/neural-local/`` by a key of the recipe.
3. **Descriptor** (:class:`tmatch.models.descriptor.PatchDescriptor`) trained by Adam on the
   hardest-in-batch triplet loss (HardNet); each epoch writes ``last.safetensors`` (weights and
   optimiser state: ``--resume`` continues from it), ``log.csv``, ``steps.csv`` and ``loss.png``.
   Validation: FPR at 95% recall and the loss on held-out photos' patches.
4. **Presence head**: the trained descriptor matches synthetic template/scene episodes (half
   absent); a logistic regression on the match statistics is fitted by gradient descent.
   The matcher's own validation (mean IoU, absent correct) is measured against SIFT on held-out
   photos and written into ``neural-local.json`` with the training time.

Outputs in the run folder: ``neural-local.safetensors`` (the network's weights) and
``neural-local.json`` (patch settings, presence head, validation metrics): what the matcher
loads; copy both into ``tmatch/weights/`` to ship them.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from tmatch import geometry
from tmatch.data.screens import ScreenSource
from tmatch.errors import TmatchError
from tmatch.files import atomic_save, atomic_write
from tmatch.matchers.neural_local.describe import weights_digest
from tmatch.matchers.neural_local.presence import STATS, PresenceHead
from tmatch.train.config import TrainConfig, save_config
from tmatch.train.neural_local_data import (
    Bank,
    build_banks,
    cached_patches,
    join_patches,
    mine_patches,
    mine_screen_patches,
    photometric,
    source_image,
)

DEFAULTS = {"text_share": 0.3, "cutout_share": 0.2, "patches_per_pair": 128, "presence_pairs": 300,
            "magnify": 3.0, "contrast": 0.03, "margin": 1.0, "keypoints": 800,
            "screen_pairs": 0, "screen_pages": 24, "screen_seed": 2, "crop_share": 0.0}


# -------------------------------------------------------------------------- loss
def hardest_triplet_loss(da, db, margin: float = 1.0):
    """HardNet loss: each matching pair against the closest non-matching descriptor in the batch.

    Args:
        da, db: ``(B, D)`` unit descriptors of matching patches (row i of each is a pair).
    """
    import torch

    d = torch.cdist(da, db).clamp_min(1e-6)
    pos = d.diagonal()
    eye = torch.eye(len(d), dtype=torch.bool, device=d.device)
    masked = d.masked_fill(eye, 10.0)
    neg = torch.minimum(masked.min(dim=1).values, masked.min(dim=0).values)
    return torch.relu(margin + pos - neg).mean()


def fpr_at_95(da: np.ndarray, db: np.ndarray, seed: int = 0) -> float:
    """False-positive rate at 95% recall: each pair against one random other patch of set b."""
    n = len(da)
    if n < 2:
        return float("nan")
    pos = np.linalg.norm(da - db, axis=1)
    other = (np.arange(n) + np.random.default_rng(seed).integers(1, n, n)) % n
    neg = np.linalg.norm(da - db[other], axis=1)
    th = np.quantile(pos, 0.95)
    return float((neg <= th).mean())


# ----------------------------------------------------------------------- training
@dataclass
class DescriptorResult:
    """What a run wrote: the weights, the settings JSON and the validation metrics."""

    weights: Path
    settings: Path
    metrics: dict


def _state_tensors(net, opt, epoch: int) -> dict:
    import torch

    out = {f"net.{k}": v.detach().cpu().clone() for k, v in net.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().clone()
    out["epoch"] = torch.tensor(epoch)
    return out


def _load_state(path: Path, net, opt) -> int:
    import torch
    from safetensors.torch import load_file

    t = load_file(str(path))
    net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
    sd = opt.state_dict()
    for k, v in t.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            sd["state"].setdefault(int(i), {})[name] = v if name != "step" else v.to(torch.float32)
    opt.load_state_dict(sd)
    return int(t["epoch"])


def _describe(net, patches: np.ndarray, batch: int = 1024) -> np.ndarray:
    import torch

    net.eval()
    device = next(net.parameters()).device
    with torch.no_grad():
        out = [net(torch.from_numpy(patches[i:i + batch]).to(device).float()[:, None]).cpu().numpy()
               for i in range(0, len(patches), batch)]
    return np.concatenate(out) if out else np.zeros((0, net.dim), np.float32)


def _plot(steps: list[tuple[int, float]], epochs: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    if steps:
        s, l = zip(*steps)
        k = max(1, len(l) // 100)
        smooth = np.convolve(l, np.ones(k) / k, mode="valid")
        ax1.plot(s, l, alpha=0.3, label="train (step)")
        ax1.plot(s[k - 1:], smooth, label="train (mean)")
    if epochs:
        ax1.plot([e["step"] for e in epochs], [e["valid_loss"] for e in epochs], "o-", label="valid")
        ax2.plot([e["epoch"] for e in epochs], [e["valid_fpr95"] for e in epochs], "o-")
    ax1.set_xlabel("step"), ax1.set_ylabel("triplet loss"), ax1.legend(), ax1.grid(alpha=0.3)
    ax2.set_xlabel("epoch"), ax2.set_ylabel("valid FPR@95"), ax2.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save(path, lambda p: fig.savefig(str(p), format="png"))


def train_descriptor(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                     echo: Callable[[str], None] = print) -> DescriptorResult:
    """Run the whole ``neural-local`` recipe (see the module docstring) into ``config.out_dir``."""
    import torch
    from safetensors.torch import save_file

    from tmatch.models.descriptor import PatchDescriptor
    from tmatch.threads import torch_threads
    from tmatch.train.distributed import pick_device

    out = config.out_dir
    last = out / "last.safetensors"
    if not resume and (last.exists() or (out / "neural-local.json").exists()) and not overwrite:
        raise TmatchError(f"{out} already holds a run; pass --overwrite to start again or --resume")
    if resume and not last.exists():
        raise TmatchError(f"nothing to resume in {out} (no {last.name})")
    opts = {**DEFAULTS, **config.data.protocol_options.get("descriptor", {})}
    hom = {"scale": (0.25, 4.0), "rotation": 180.0, "corner_jitter": 0.15,
           **config.data.protocol_options.get("homography", {})}
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise TmatchError(f"unknown descriptor options {sorted(unknown)}; accepted: {sorted(DEFAULTS)}")
    device = pick_device(config.device)  # before any work: a missing GPU is a one-line error
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    t_start = time.perf_counter()
    with torch_threads(config.threads):
        train_bank, valid_bank = build_banks(config, echo)
        recipe = {"sources": [s.describe() for s in config.data.sources], "split": [config.data.train_size,
                  config.data.split_seed], "opts": opts, "hom": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in hom.items()}, "seed": config.seed}
        echo(f"mining patches from {config.data.train_pairs} + {config.data.valid_pairs} view pairs")
        tr = cached_patches({**recipe, "part": "train", "n": config.data.train_pairs}, lambda: mine_patches(
            np.random.default_rng(config.seed), train_bank, config.data.train_pairs, opts, hom, echo), echo)
        va = cached_patches({**recipe, "part": "valid", "n": config.data.valid_pairs}, lambda: mine_patches(
            np.random.default_rng(config.seed + 1), valid_bank, max(1, config.data.valid_pairs), opts, hom,
            echo), echo)
        if opts["screen_pairs"]:
            echo(f"mining patches from {opts['screen_pairs']} re-rendered screen pairs "
                 f"({opts['screen_pages']} pages, seed {opts['screen_seed']})")
            tr = join_patches(tr, cached_patches(
                {**recipe, "part": "screens", "n": opts["screen_pairs"]}, lambda: mine_screen_patches(
                    np.random.default_rng(config.seed + 2), ScreenSource(pages=opts["screen_pages"],
                                                                         seed=opts["screen_seed"]),
                    opts["screen_pairs"], opts, echo), echo))
        echo(f"patch pairs: {len(tr)} train, {len(va)} valid")

        torch.manual_seed(config.seed)
        echo(f"training on {device}")
        net = PatchDescriptor().to(device)
        opt = torch.optim.Adam(net.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
        steps_per_epoch = max(1, len(tr) // config.batch_size)
        total = steps_per_epoch * config.epochs
        start = _load_state(last, net, opt) if resume else 0
        logs = _read_csv(out / "log.csv") if resume else []
        steps = [(int(r["step"]), float(r["loss"])) for r in _read_csv(out / "steps.csv")] if resume else []
        if resume:
            echo(f"resuming after epoch {start}")
        ta, tb = torch.from_numpy(tr.a), torch.from_numpy(tr.b)
        for epoch in range(start, config.epochs):
            net.train()
            t0 = time.perf_counter()
            order = np.random.default_rng(config.seed * 1000 + epoch).permutation(len(tr))
            for k in range(steps_per_epoch):
                step = epoch * steps_per_epoch + k
                lr = _lr(config, step, total)
                for g in opt.param_groups:
                    g["lr"] = lr
                idx = torch.from_numpy(order[k * config.batch_size:(k + 1) * config.batch_size])
                xa, xb = (t[idx].to(device, non_blocking=True).float()[:, None] for t in (ta, tb))
                if np.random.default_rng(step).random() < 0.5:  # the pair's roles swapped
                    xa, xb = xb, xa
                loss = hardest_triplet_loss(net(xa), net(xb), opts["margin"])
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps.append((step + 1, float(loss.detach())))
            da, db = _describe(net, va.a), _describe(net, va.b)
            with torch.no_grad():
                vl = float(np.mean([float(hardest_triplet_loss(torch.from_numpy(da[i:i + config.batch_size]),
                                                               torch.from_numpy(db[i:i + config.batch_size]),
                                                               opts["margin"]))
                                    for i in range(0, max(1, len(da) - config.batch_size + 1), config.batch_size)]))
            rec = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch,
                   "train_loss": float(np.mean([l for _, l in steps[-steps_per_epoch:]])),
                   "valid_loss": vl, "valid_fpr95": fpr_at_95(da, db), "seconds": time.perf_counter() - t0}
            logs.append(rec)
            echo(f"epoch {epoch + 1}/{config.epochs}: train loss {rec['train_loss']:.3f}, valid loss "
                 f"{vl:.3f}, valid FPR@95 {rec['valid_fpr95']:.3f} ({rec['seconds']:.0f} s)")
            _write_csv(out / "steps.csv", [{"step": s, "loss": l} for s, l in steps])
            _write_csv(out / "log.csv", logs)
            atomic_save(last, lambda p: save_file(_state_tensors(net, opt, epoch + 1), str(p)))
            _plot(steps, logs, out / "loss.png")

        net = net.cpu().eval()  # saved, exported and measured on the CPU
        weights = out / "neural-local.safetensors"
        atomic_save(weights, lambda p: save_file(
            {k: v.contiguous() for k, v in net.state_dict().items()}, str(p),
            metadata={"matcher": "neural-local", "width": str(net.width), "dim": str(net.dim)}))
        graph = export_graph(net, out / "neural-local.onnx")
        settings = {"matcher": "neural-local", "magnify": opts["magnify"], "contrast": opts["contrast"],
                    "network": {"class": "PatchDescriptor", "width": net.width, "dim": net.dim},
                    "graph": {"file": graph.name, "weights_digest": weights_digest(weights)}}
        atomic_write(out / "neural-local.json", json.dumps(settings, indent=1))
        echo(f"fitting the presence head on {opts['presence_pairs']} episodes")
        head, metrics = fit_presence(weights, train_bank, valid_bank, opts, hom, config, echo)
        metrics["descriptor"] = logs[-1] if logs else {}
        settings.update(presence=head.to_dict(), metrics=metrics,
                        training={"hours": (time.perf_counter() - t_start) / 3600, "patch_pairs": len(tr),
                                  "epochs": config.epochs, "steps": total, "sources": recipe["sources"],
                                  "threads": config.threads})
        atomic_write(out / "neural-local.json", json.dumps(settings, indent=1))
    echo(f"wrote {weights} and {out / 'neural-local.json'}")
    return DescriptorResult(weights, out / "neural-local.json", metrics)


def export_graph(net, path: Path) -> Path:
    """The descriptor network as ONNX (``(N, 1, 32, 32)`` float patches → ``(N, D)``), written
    atomically; the matcher runs it with onnxruntime (see :class:`Describer`)."""
    import torch

    net = net.eval()

    def write(p: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.zeros(2, 1, 32, 32), str(p), input_names=["patches"],
                              output_names=["descriptors"], dynamic_axes={"patches": {0: "n"},
                              "descriptors": {0: "n"}}, opset_version=17, dynamo=False)

    atomic_save(path, write)
    return path


def _lr(config: TrainConfig, step: int, total: int) -> float:
    o = config.optim
    warm = max(1, int(total * 0.03))
    if step < warm:
        return o.lr * (step + 1) / warm
    if o.schedule != "cosine":
        return o.lr
    t = (step - warm) / max(1, total - warm)
    return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + np.cos(np.pi * t))


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    text = ",".join(keys) + "\n" + "".join(",".join(f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k])
                                                     for k in keys) + "\n" for r in rows)
    atomic_write(path, text)


# ------------------------------------------------------------------------ presence
@dataclass
class Episode:
    """A template, a scene and where the template is (``None``: absent)."""

    template: np.ndarray
    scene: np.ndarray
    truth: np.ndarray | None


def episode(rng: np.random.Generator, bank: Bank, opts: dict, hom: dict, present: bool,
            scene_hw: tuple[int, int] = (480, 640)) -> Episode:
    """A matching case: a crop of one picture, placed (or not) in another at a random homography
    (any angle, the config's scale range, perspective), with photometric damage."""
    src = source_image(rng, bank, opts)
    side = int(np.exp(rng.uniform(np.log(48), np.log(400))))
    th, tw = min(side, src.shape[0]), min(int(side * rng.uniform(0.6, 1.6)), src.shape[1])
    th, tw = max(th, 16), max(tw, 16)
    y, x = int(rng.integers(0, src.shape[0] - th + 1)), int(rng.integers(0, src.shape[1] - tw + 1))
    tpl = src[y:y + th, x:x + tw]
    H, W = scene_hw
    bg = cv2.resize(bank.photos[int(rng.integers(len(bank.photos)))], (W, H), interpolation=cv2.INTER_AREA)
    lo, hi = hom.get("scale", (0.25, 4.0))
    s_lo, s_hi = max(lo, 24.0 / max(th, tw)), min(hi, 0.9 * min(H, W) / max(th, tw))
    s = float(np.exp(rng.uniform(np.log(s_lo), np.log(max(s_lo, s_hi)))))
    truth = None
    if present:
        hm = geometry.random_homography(rng, (th, tw), (H, W), scale=(s, s), rotation=float(hom.get("rotation", 180)),
                                        perspective=rng.uniform(0, 0.3) / max(th, tw))
        warped = geometry.warp_image(tpl, hm, (H, W))
        cover = geometry.warp_image(np.full((th, tw), 255, np.uint8), hm, (H, W)) > 254
        bg = np.where(cover, warped, bg)
        truth = geometry.template_polygon(hm, (th, tw))
    scene = photometric(rng, bg)
    rgb = lambda g: np.repeat(g[:, :, None], 3, axis=2)  # noqa: E731
    return Episode(rgb(tpl), rgb(scene), truth)


def _episode_stats(matcher, ep: Episode) -> tuple[np.ndarray, float, bool]:
    """(stats, IoU of the fitted polygon with the truth, fitted geometry plausible)."""
    tpl = matcher.prepare(ep.template)
    img = matcher.features(ep.scene, matcher.max_points, matcher.max_side, matcher.min_side)
    v = matcher.verify(tpl, img, ep.template.shape[:2], ep.scene.shape[:2])
    iou = 0.0
    if ep.truth is not None and v.homography is not None and v.plausible:
        iou = geometry.polygon_iou(geometry.template_polygon(v.homography, ep.template.shape[:2]), ep.truth)
    return v.stats(), iou, v.plausible


def fit_logistic(x: np.ndarray, y: np.ndarray) -> PresenceHead:
    """The shared class-balanced fit (:func:`tmatch.models.logistic.fit_logistic`) as a
    ``neural-local`` head on raw statistics (the standardisation folded in)."""
    from tmatch.models.logistic import fit_logistic as fit

    return PresenceHead.folded(fit(x, y))


def fit_presence(weights: Path, train_bank: Bank, valid_bank: Bank, opts: dict, hom: dict,
                 config: TrainConfig, echo: Callable[[str], None]) -> tuple[PresenceHead, dict]:
    """Fit the presence head on training episodes; measure the matcher (and SIFT) on validation ones."""
    from tmatch.matchers.features import SIFTMatcher
    from tmatch.matchers.neural_local import NeuralLocalMatcher

    matcher = NeuralLocalMatcher(weights=str(weights), threads=config.threads)
    n = int(opts["presence_pairs"])
    rng = np.random.default_rng(config.seed + 7)
    xs, ys = [], []
    for i in range(n):
        ep = episode(rng, train_bank, opts, hom, present=i % 2 == 0)
        st, iou, ok = _episode_stats(matcher, ep)
        xs.append(st)
        ys.append(float(ep.truth is not None and iou >= 0.5 and ok))
    head = fit_logistic(np.array(xs), np.array(ys))
    matcher.head = head
    echo(f"presence head: weights {np.round(head.weights, 2).tolist()} ({', '.join(STATS)}), bias {head.bias:.2f}")
    sift = SIFTMatcher()
    rng = np.random.default_rng(config.seed + 11)
    rows = {"neural-local": [], "sift": []}
    for i in range(max(2, n // 2)):
        ep = episode(rng, valid_bank, opts, hom, present=i % 2 == 0)
        for name, m in (("neural-local", matcher), ("sift", sift)):
            r = m.match(ep.template, ep.scene)
            iou = geometry.polygon_iou(r.polygon, ep.truth) if (r.found and ep.truth is not None) else 0.0
            rows[name].append((ep.truth is not None, r.found, iou, r.ms))
    metrics = {}
    for name, r in rows.items():
        arr = np.array(r, np.float64)
        pres = arr[:, 0] > 0
        metrics[name] = {"valid_mean_iou": float(arr[pres, 2].mean()),
                         "valid_absent_correct": float((arr[~pres, 1] == 0).mean()),
                         "valid_median_ms": float(np.median(arr[:, 3])), "episodes": int(len(arr))}
        echo(f"validation {name}: mean IoU {metrics[name]['valid_mean_iou']:.3f} (present), absent correct "
             f"{metrics[name]['valid_absent_correct']:.1%}, median {metrics[name]['valid_median_ms']:.0f} ms")
    return head, metrics
