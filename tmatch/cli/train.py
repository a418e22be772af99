"""``tmatch train [PRESET|CONFIG.yaml]``: train a network, on one CPU or many GPUs (torchrun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tmatch.errors import TmatchError


def train_cmd(
    config: Annotated[Optional[str], typer.Argument(
        help="A preset (seed, smoke, neural, neural-seg, dual-unet) or a YAML config file; omit with --resume.",
        show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option(
        "--preset", help="Same as the CONFIG argument: seed, smoke, neural, neural-seg, dual-unet, or a YAML file.",
        show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Number of epochs.", min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        help="Pairs per step on each process.", min=1)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Base learning rate.", min=0.0)] = None,
    data: Annotated[Optional[list[str]], typer.Option(
        "--data", help="Training source, repeatable (mixed equally): 'samples', a COCO or photo "
        "folder, or KIND:PATH with KIND coco|folder|cutouts (e.g. cutouts:stamps/). Weights "
        "and options: in the YAML file.")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Run folder (default runs/NAME).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from its last complete epoch.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start afresh in a folder that already holds a run.")] = False,
    device: Annotated[Optional[str], typer.Option(
        help="auto, cpu, cuda or cuda:N (under torchrun each process takes GPU LOCAL_RANK).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        help="DataLoader worker processes per training process.", min=0)] = None,
    threads: Annotated[Optional[int], typer.Option(
        help="CPU threads per training process (1 on a busy shared CPU).", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialisation and pairs.")] = None,
    train_pairs: Annotated[Optional[int], typer.Option(
        help="Training pairs per epoch.", min=1)] = None,
    valid_pairs: Annotated[Optional[int], typer.Option(
        help="Validation pairs (0: no validation).", min=0)] = None,
    input_size: Annotated[Optional[int], typer.Option(
        help="Network input side S (multiple of 32).", min=32)] = None,
    amp: Annotated[Optional[bool], typer.Option(
        "--amp/--no-amp", help="Mixed precision on CUDA.", show_default=False)] = None,
    progress: Annotated[Optional[bool], typer.Option(
        "--progress/--no-progress", help="Progress bar.", show_default=False)] = None,
    show_config: Annotated[bool, typer.Option(
        "--show-config", help="Print the resolved config as YAML and exit.")] = False,
) -> None:
    """Train the dual-unet or neural network; logs, curves, predictions and checkpoints go to
    the run folder (last.safetensors, best.safetensors, logs.json, tb/, loss_iou.png).

    Examples:

      tmatch train smoke --out runs/smoke                      # seconds on a CPU

      tmatch train --preset neural                             # the shipped neural weights (minutes)

      tmatch train neural --data cutouts:stamps/ --data photos/ --train-pairs 3000 --out runs/n1

      tmatch train neural-seg --data cutouts:stamps/ --epochs 30 --out runs/seg   # a network

      tmatch train seed --device cuda --workers 8              # the original recipe

      tmatch train my.yaml --out runs/n1 --resume --epochs 60  # continue, longer

      torchrun --nproc_per_node 4 -m tmatch train neural-seg --out runs/ddp   # 4 GPUs
    """
    from tmatch.outputs import Output, check_number, check_outputs
    from tmatch.train.config import apply_overrides, load_config

    check_number(lr, "--lr", lo=0, open_lo=True)
    check_outputs({"--out": Output(out, "folder")},
                  {"CONFIG": config if config is not None and Path(config).is_file() else None})
    if preset is not None and config is not None and preset != config:
        raise TmatchError(f"give the config once: either '{config}' or --preset {preset}")
    config = config if config is not None else preset
    from tmatch.train.loop import CONFIG

    if resume and overwrite:
        raise TmatchError("--resume and --overwrite contradict each other: --resume continues the run "
                          "in --out, --overwrite starts it again; give one")
    if resume:
        if out is None:
            raise TmatchError("--resume needs --out, the run folder to continue")
        saved = out / CONFIG
        if not saved.is_file():
            raise TmatchError(f"nothing to resume in {out} (no {CONFIG})")
        if config is not None:
            typer.echo(f"note: resuming with the run's own {saved}; '{config}' is ignored", err=True)
        cfg = load_config(saved)
    else:
        if config is None:
            raise TmatchError("give a preset (seed, smoke, neural) or a YAML config file, "
                              "e.g. `tmatch train smoke`")
        cfg = load_config(config)
    cfg = apply_overrides(cfg, epochs=epochs, batch_size=batch_size, lr=lr, data=data, out=out,
                          device=device, workers=workers, seed=seed, train_pairs=train_pairs,
                          valid_pairs=valid_pairs, amp=amp, progress=progress,
                          input_size=input_size, threads=threads)
    if show_config:
        typer.echo(cfg.to_yaml().rstrip())
        return
    check_outputs({"--out": Output(cfg.out_dir, "folder")})

    from tmatch.train.distributed import env_ranks
    from tmatch.train.trainers import trainer_for

    trainer = trainer_for(cfg.model.arch)
    if resume and not trainer.resumable:
        raise TmatchError(f"the {trainer.matcher} matcher's {trainer.what} trains in one pass; drop --resume")
    if env_ranks()[2] > 1 and not trainer.distributed:
        raise TmatchError(f"the {trainer.matcher} matcher's {trainer.what} trains in one process; "
                          f"run it without torchrun")
    rank = env_ranks()[0]
    if rank == 0:
        typer.echo(f"training the {trainer.matcher} matcher's {trainer.what} ({cfg.name}) -> {cfg.out_dir}")
    run = trainer.load()
    result = run(cfg, overwrite=overwrite, echo=typer.echo, **({"resume": resume} if trainer.resumable else {}))
    if rank != 0 or result is None:
        return
    if getattr(result, "best_epoch", None) is not None:
        typer.echo(f"best epoch {result.best_epoch + 1} ({cfg.monitor} {result.best_score:.4f}): "
                   f"{result.best}")
    elif getattr(result, "best", None) or getattr(result, "weights", None):
        typer.echo(f"wrote {getattr(result, 'best', None) or result.weights}")


def register(app: typer.Typer) -> None:
    """Add ``tmatch train`` to the app."""
    app.command("train")(train_cmd)
