"""The training loop: one code path from one CPU process to many GPUs under ``torchrun``.

:func:`train` runs a :class:`~tmatch.train.config.TrainConfig` and writes, in the run folder
(main process only):

* ``config.yaml`` — the resolved config;
* ``logs.json`` — one record per epoch (losses, IoU, lr, throughput, per-step losses);
* ``tb/`` — TensorBoard scalars (per step and per epoch);
* ``loss_iou.png`` — loss and IoU curves; ``predictions/epoch_N.png`` — query, image, truth and
  prediction with its IoU on fixed validation pairs;
* ``last.safetensors`` / ``best.safetensors`` (+ ``.json`` sidecars) — model weights through
  :func:`tmatch.models.checkpoint.save_checkpoint`, with the recipe and metrics as metadata;
* ``resume/epoch-NNNN/`` — ``last.safetensors`` and ``state.pt``, the resumable state
  (optimiser, scheduler, gradient scaler, RNG states, epoch, step, records; tensors and plain
  values only, loaded with ``weights_only=True``), written as one folder that appears only when
  both are complete; the previous pair is removed only after the new one is in place. Copies
  (hard links) of both are published as ``last.safetensors`` and ``state.pt`` in the run folder.

Every file is written atomically (temp file + rename), so an interrupted run resumes from the
last complete epoch with ``resume=True`` and continues exactly as if never stopped: the pairs
of an epoch depend only on (seed, epoch, slot), and the model, optimiser, schedule and RNG
states are restored.
"""


from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable

import numpy as np
import torch

from tmatch.errors import CheckpointError, TmatchError
from tmatch.files import atomic_dir, atomic_write
from tmatch.outputs import remove_stale
from tmatch.threads import torch_threads
from tmatch.train import distributed as tdist
from tmatch.train.config import TrainConfig, save_config
from tmatch.train.losses import LossParts, MatchingLoss, batch_metrics, summarize
from tmatch.train.records import EpochRecord, TrainResult
from tmatch.train.resume import (
    LAST,
    RESUME_DIR,
    STATE_FILE,
    check_out_dir,
    load_state,
    publish_copy,
    resume_candidates,
    resume_pairs,
    rng_state,
    set_rng_state,
)
from tmatch.train.schedule import LrSchedule

BEST = "best.safetensors"
LOGS = "logs.json"
CONFIG = "config.yaml"
CURVES = "loss_iou.png"
PREDICTIONS = "predictions"
TENSORBOARD = "tb"

__all__ = [
    "BEST",
    "CONFIG",
    "CURVES",
    "LAST",
    "LOGS",
    "PREDICTIONS",
    "RESUME_DIR",
    "STATE_FILE",
    "TENSORBOARD",
    "EpochRecord",
    "LrSchedule",
    "TrainResult",
    "Trainer",
    "check_out_dir",
    "load_state",
    "publish_copy",
    "resume_candidates",
    "resume_pairs",
    "train",
]


class Trainer:
    """Builds everything a run needs and runs its epochs; :func:`train` wraps it with the
    process-group setup. Building one seeds the global python, numpy and torch RNGs with
    ``config.seed`` (a training run owns its process); :meth:`step` is usable on its own.

    Args:
        config: the run's config.
        ctx: the process's :class:`~tmatch.train.distributed.DistContext`.
        echo: called with one line per epoch on the main process (e.g. ``print``).
    """

    def __init__(self, config: TrainConfig, ctx: tdist.DistContext,
                 echo: Callable[[str], None] | None = None) -> None:
        from tmatch.models import build_model
        from tmatch.train.data import build_data

        self.config = config
        self.ctx = ctx
        self.echo = echo if (echo is not None and ctx.is_main) else (lambda s: None)
        self.out = config.out_dir
        self.device = ctx.device
        self.use_amp = bool(config.amp and self.device.type == "cuda")
        self.amp_dtype = torch.float16 if config.amp_dtype == "float16" else torch.bfloat16

        random.seed(config.seed)
        np.random.seed(config.seed % 2**32)
        torch.manual_seed(config.seed)
        self.model = build_model(config.model).to(self.device)
        self.data = build_data(config)
        self.train_loader, self.train_sampler = self._loader(self.data.train, train=True)
        self.valid_loader = self._loader(self.data.valid, train=False)[0] if self.data.valid else None
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise TmatchError("no training step per epoch: raise data.train_pairs or lower batch_size")

        self.net = self.model
        if ctx.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.optimizer = self._optimizer()
        o = config.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.loss_fn = MatchingLoss.from_config(config.loss)
        self.grad_clip = o.grad_clip
        self.epoch = 0
        self.global_step = 0
        self.records: list[EpochRecord] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.writer = None

    # -- construction --------------------------------------------------------------------------
    def _loader(self, ds, train: bool):
        from tmatch.data.torch_dataset import collate

        c = self.config
        sampler = tdist.SlotSampler(len(ds), self.ctx.rank, self.ctx.world_size, pad=train,
                                    fixed_epoch=None if train else 0)
        n = len(sampler)
        drop_last = bool(train and n > c.batch_size and n % c.batch_size == 1)  # no batch of 1
        loader = torch.utils.data.DataLoader(
            ds, batch_size=c.batch_size, sampler=sampler, num_workers=c.workers,
            collate_fn=collate, pin_memory=self.device.type == "cuda", drop_last=drop_last,
            persistent_workers=c.workers > 0, prefetch_factor=4 if c.workers > 0 else None)
        return loader, sampler

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.config.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        if o.name == "adam":
            return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        if o.name == "adamw":
            return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=True)

    def _schedule(self) -> LrSchedule:
        o = self.config.optim
        total = self.steps_per_epoch * self.config.epochs
        return LrSchedule(o.schedule, self.steps_per_epoch, total, list(o.milestones), o.gamma,
                          round(o.warmup_epochs * self.steps_per_epoch),
                          o.min_lr / o.lr if o.lr > 0 else 0.0)

    # -- one epoch -----------------------------------------------------------------------------
    def _forward(self, batch):
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            out = self.net(batch.image, batch.query)
        return out

    def step(self, batch) -> tuple[dict, LossParts]:
        """One optimiser step on a batch already on the device: forward (autocast on CUDA),
        loss, backward (scaled), optional clipping, optimiser and schedule step.

        Returns:
            The model output and the :class:`~tmatch.train.losses.LossParts` (detached).
        """
        out = self._forward(batch)
        parts = self.loss_fn(out, batch.target, batch.present)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(parts.total).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.global_step += 1
        return out, LossParts(parts.total.detach(), parts.dice, parts.bce, parts.presence)

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], list[float], int]:
        """Run one training epoch; returns the all-process means, the step losses and steps."""
        from tqdm.auto import tqdm

        self.net.train()
        self.train_sampler.set_epoch(epoch)
        sums = torch.zeros(8, dtype=torch.float64, device=self.device)
        parts_sum = torch.zeros(3, dtype=torch.float64, device=self.device)
        losses: list[float] = []
        bar = tqdm(self.train_loader, total=self.steps_per_epoch, leave=False, dynamic_ncols=True,
                   desc=f"epoch {epoch + 1}/{self.config.epochs}", mininterval=0.5,
                   disable=not (self.ctx.is_main and self.config.progress))
        for batch in bar:
            batch = batch.to(self.device, non_blocking=True)
            out, parts = self.step(batch)
            loss = float(parts.total)
            if not math.isfinite(loss):
                raise TmatchError(f"the loss became {loss} at step {self.global_step} (epoch "
                                  f"{epoch + 1}); lower the learning rate (--lr) or turn off amp")
            losses.append(loss)
            b = len(batch)
            sums += batch_metrics(out, batch.target, batch.present, parts.total,
                                  self.config.metric_threshold)
            parts_sum += torch.stack([parts.dice, parts.bce, parts.presence]).double() * b
            if self.writer is not None and self.global_step % self.config.log_every == 0:
                self.writer.add_scalar("step/loss", loss, self.global_step)
                self.writer.add_scalar("step/lr", self.optimizer.param_groups[0]["lr"], self.global_step)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.close()
        allsum = tdist.all_reduce_sum(torch.cat([sums, parts_sum]), self.ctx)
        res = summarize(allsum[:8])
        n = max(float(allsum[0]), 1.0)
        res.update({"dice": float(allsum[8]) / n, "bce": float(allsum[9]) / n,
                    "presence": float(allsum[10]) / n, "pairs": n})
        return res, losses, len(losses)

    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """Validation means over all processes (``None`` without validation pairs)."""
        if self.valid_loader is None:
            return None
        self.model.eval()
        sums = torch.zeros(8, dtype=torch.float64, device=self.device)
        for batch in self.valid_loader:
            batch = batch.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                out = self.model(batch.image, batch.query)
            parts = self.loss_fn(out, batch.target, batch.present)
            sums += batch_metrics(out, batch.target, batch.present, parts.total,
                                  self.config.metric_threshold)
        allsum = tdist.all_reduce_sum(sums, self.ctx)
        res = summarize(allsum)
        res["pairs"] = float(allsum[0])
        return res

    @torch.no_grad()
    def prediction_views(self) -> list:
        """The first ``vis_pairs`` validation pairs (training pairs of epoch 0 without
        validation) with the model's prediction at image resolution."""
        from tmatch import geometry
        from tmatch.models.inputs import mask_to_image, prepare_inputs
        from tmatch.train.plots import PredictionView

        ds = self.data.valid or self.data.train
        views = []
        self.model.eval()
        thr = self.config.metric_threshold
        for slot in range(min(self.config.vis_pairs, len(ds))):
            pair = ds.pair(0, slot)
            inputs = prepare_inputs(self.config.model, pair.template, pair.image)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                out = self.model(inputs.image[None].to(self.device), inputs.query[None].to(self.device))
            prob = torch.sigmoid(out["mask"].float())[0, 0].cpu().numpy()
            pred = mask_to_image(self.config.model, prob, inputs) > thr
            presence = None
            if out.get("presence") is not None:
                presence = float(torch.sigmoid(out["presence"].float().reshape(-1)[0]))
                if presence <= 0.5:
                    pred = np.zeros_like(pred)
            truth = ds.target_mask(pair)
            views.append(PredictionView(pair.template, pair.image, truth, pred,
                                        geometry.iou(pred, truth), bool(pair.present), presence))
        return views

    # -- files ---------------------------------------------------------------------------------
    def _meta(self, record: EpochRecord, kind: str) -> dict:
        import tmatch

        c = self.config
        return {"kind": kind, "epoch": record.epoch, "global_step": record.global_step,
                "metrics": {"train": record.train, "valid": record.valid},
                "monitor": c.monitor, "best_score": self.best_score, "data": self.data.description,
                "recipe": {"optim": c.optim.model_dump(mode="json"),
                           "loss": c.loss.model_dump(mode="json"), "epochs": c.epochs,
                           "batch_size": c.batch_size, "world_size": self.ctx.world_size,
                           "seed": c.seed, "amp": self.use_amp, "name": c.name},
                "tmatch_version": tmatch.__version__}

    def _state(self) -> dict:
        sd = self.scheduler.state_dict()
        sd.pop("lr_lambdas", None)
        return {"format": 1, "epoch": self.epoch, "global_step": self.global_step,
                "optimizer": self.optimizer.state_dict(), "scheduler": sd,
                "scaler": self.scaler.state_dict(), "rng": rng_state(self.device),
                "best_score": self.best_score, "best_epoch": self.best_epoch,
                "records": [r.to_dict() for r in self.records],
                "model_config": self.config.model.to_dict(),
                "world_size": self.ctx.world_size}

    def write_logs(self) -> None:
        """``logs.json``, the curve PNG (main process)."""
        from tmatch import io
        from tmatch.train.plots import curves

        logs = {"name": self.config.name, "world_size": self.ctx.world_size,
                "device": str(self.device), "steps_per_epoch": self.steps_per_epoch,
                "data": self.data.description, "monitor": self.config.monitor,
                "best": {"epoch": self.best_epoch, "score": self.best_score},
                "config": self.config.to_dict(), "epochs": [r.to_dict() for r in self.records]}
        atomic_write(self.out / LOGS, json.dumps(logs, indent=1).encode())
        io.write_image(self.out / CURVES, curves([r.to_dict() for r in self.records],
                                                 title=self.config.name))

    def save(self, record: EpochRecord) -> None:
        """Checkpoints and state of the epoch just finished (main process).

        Weights and state are written together as one folder ``resume/epoch-NNNN/`` that
        appears only when both are complete; ``last.safetensors`` is then published from it and
        the previous pair removed. A kill at any moment leaves a consistent pair to resume from
        (the published ``last.safetensors`` / ``state.pt`` may lag behind it by one epoch).
        """
        from tmatch.models.checkpoint import save_checkpoint, sidecar_path

        if record.best:
            save_checkpoint(self.out / BEST, self.model, self.config.model, self._meta(record, "best"))
        state = self._state()
        pair = self.out / RESUME_DIR / f"epoch-{record.epoch:04d}"
        remove_stale(pair)
        with atomic_dir(pair) as tmp:
            save_checkpoint(tmp / LAST, self.model, self.config.model, self._meta(record, "last"))
            torch.save(state, tmp / STATE_FILE)
        for name in (LAST, sidecar_path(LAST).name, STATE_FILE):
            publish_copy(pair / name, self.out / name)
        for old in resume_pairs(self.out):
            if old != pair:
                shutil.rmtree(old, ignore_errors=True)

    def resume(self) -> None:
        """Restore model, optimiser, schedule, scaler, RNG and history from the run folder,
        from the newest complete pair of weights and state (an older one when the newest is unusable)."""
        from tmatch.models.checkpoint import load_checkpoint

        problems = []
        for weights, state in resume_candidates(self.out):
            try:
                st = load_state(state)
                if st.get("model_config") != self.config.model.to_dict():
                    raise TmatchError(f"cannot resume {self.out}: the model section differs from the "
                                      "run's (resume with the run's own config.yaml)")
                model, _, meta = load_checkpoint(weights, map_location="cpu")
                if int(meta.get("epoch", -1)) != int(st["epoch"]):
                    raise CheckpointError(f"{weights} (epoch {meta.get('epoch')}) and {state} "
                                          f"(epoch {st['epoch']}) disagree")
            except CheckpointError as e:
                problems.append(str(e))
                continue
            break
        else:
            why = "; ".join(problems) if problems else f"no {STATE_FILE}"
            raise CheckpointError(f"nothing to resume in {self.out}: {why}; pass --overwrite to start again")
        if problems:
            self.echo(f"note: resuming from {state.parent} (epoch {int(st['epoch']) + 1}); "
                      f"skipped a newer unusable one: {problems[0]}")
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(st["optimizer"])
        sd = dict(st["scheduler"])
        # The schedule itself follows the current config (e.g. more --epochs); only its
        # position is restored.
        sd["lr_lambdas"] = [None] * len(self.scheduler.lr_lambdas)
        self.scheduler.load_state_dict(sd)
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.global_step = int(st["global_step"])
        self.epoch = int(st["epoch"]) + 1
        self.best_score, self.best_epoch = st.get("best_score"), st.get("best_epoch")
        self.records = [EpochRecord(**r) for r in st.get("records", [])]
        set_rng_state(st["rng"], self.device)

    # -- the run -------------------------------------------------------------------------------
    def _prepare_out(self, overwrite: bool = False) -> None:
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in (LAST, BEST, STATE_FILE, LOGS, CONFIG, CURVES, RESUME_DIR):
                remove_stale(self.out / name)  # hidden files of a killed run
            if overwrite:  # the old run's resumable state goes: a kill now resumes nothing old
                shutil.rmtree(self.out / RESUME_DIR, ignore_errors=True)
                with contextlib.suppress(OSError):
                    (self.out / STATE_FILE).unlink()
            save_config(self.config, self.out / CONFIG)

    def fit(self, resume: bool = False, overwrite: bool = False) -> TrainResult:
        """Run the remaining epochs; see :func:`train`."""
        from tmatch import io
        from tmatch.train.plots import prediction_grid

        check_out_dir(self.out, resume, overwrite)
        self._prepare_out(overwrite=overwrite and not resume)
        if resume:
            self.resume()
        c = self.config
        if self.ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / TENSORBOARD),
                                        purge_step=self.global_step if resume else None)
        try:
            for epoch in range(self.epoch, c.epochs):
                self.epoch = epoch
                t0 = time.perf_counter()
                tr, losses, steps = self.train_epoch(epoch)
                t_train = time.perf_counter() - t0
                va = self.validate()
                score = va[c.monitor] if va else -tr["loss"]
                best = self.best_score is None or score > self.best_score
                if best:
                    self.best_score, self.best_epoch = float(score), epoch
                rec = EpochRecord(epoch=epoch, lr=float(self.optimizer.param_groups[0]["lr"]),
                                  train=tr, valid=va, steps=steps, global_step=self.global_step,
                                  time_s=time.perf_counter() - t0,
                                  pairs_per_s=tr["pairs"] / max(t_train, 1e-9), step_loss=losses,
                                  best=best)
                self.records.append(rec)
                if self.ctx.is_main:
                    self._epoch_scalars(rec)
                    if c.vis_pairs and ((epoch + 1) % c.vis_every == 0 or epoch == c.epochs - 1):
                        io.write_image(self.out / PREDICTIONS / f"epoch_{epoch + 1}.png",
                                       prediction_grid(self.prediction_views()))
                    self.write_logs()
                    self.save(rec)
                self.echo(rec.summary(c.epochs))
                tdist.barrier(self.ctx)
        finally:
            if self.writer is not None:
                self.writer.close()
        return TrainResult(out_dir=self.out, records=list(self.records), best_epoch=self.best_epoch,
                           best_score=self.best_score, last=self.out / LAST, best=self.out / BEST)

    def _epoch_scalars(self, rec: EpochRecord) -> None:
        w = self.writer
        if w is None:
            return
        for k, v in rec.train.items():
            w.add_scalar(f"train/{k}", v, rec.epoch + 1)
        for k, v in (rec.valid or {}).items():
            w.add_scalar(f"valid/{k}", v, rec.epoch + 1)
        w.add_scalar("epoch/lr", rec.lr, rec.epoch + 1)
        w.add_scalar("epoch/pairs_per_s", rec.pairs_per_s, rec.epoch + 1)
        w.flush()


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          echo: Callable[[str], None] | None = None) -> TrainResult:
    """Train a network as ``config`` says, in this process or as one rank of ``torchrun``.

    Args:
        config: the run's :class:`~tmatch.train.config.TrainConfig` (``out`` is the run folder).
        resume: continue the run in ``config.out_dir`` from its last complete epoch.
        overwrite: start afresh in a folder that already holds a run.
        echo: called with one summary line per epoch on the main process.

    Returns:
        :class:`TrainResult` (on every rank; only rank 0 wrote files).

    Raises:
        TmatchError: a folder that already holds a run (without ``resume``/``overwrite``),
            nothing to resume, a diverging loss; DataError / CheckpointError for bad data or
            state files.
    """
    check_out_dir(config.out_dir, resume, overwrite)
    ctx = tdist.setup(config.device)
    benchmark = torch.backends.cudnn.benchmark
    try:
        with torch_threads(config.threads):
            if ctx.device.type == "cuda":
                torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick kernels
            return Trainer(config, ctx, echo).fit(resume=resume, overwrite=overwrite)
    finally:
        torch.backends.cudnn.benchmark = benchmark  # no global setting left changed
        tdist.cleanup(ctx)
