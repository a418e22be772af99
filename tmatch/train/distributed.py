"""One process or many: the distributed context, sharding of pair slots, and reductions.

``torchrun`` (or Slurm's ``srun`` around it) sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`setup` reads them, joins the process group (``nccl`` on CUDA, ``gloo`` on CPU) and picks
the device. With ``WORLD_SIZE`` unset or 1 nothing is initialised and the same training code
runs in one process. Only the main process (rank 0) writes logs and checkpoints.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from tmatch.errors import TmatchError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        device: the torch device this process trains on.
        backend: ``"nccl"``, ``"gloo"`` or ``None`` when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_ranks(env: dict | None = None) -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from torchrun's variables (``(0, 0, 1)`` if unset)."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise TmatchError(f"bad RANK/LOCAL_RANK/WORLD_SIZE in the environment: {e}") from None
    if world < 1 or not 0 <= rank < world:
        raise TmatchError(f"inconsistent RANK={rank} / WORLD_SIZE={world} in the environment")
    return rank, local, world


def pick_device(spec: str, local_rank: int = 0) -> torch.device:
    """The device for ``spec`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``); ``auto`` and ``cuda``
    take GPU ``local_rank`` so that each process of a node gets its own."""
    spec = (spec or "auto").lower()
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TmatchError(f"device {spec!r} asked for, but CUDA is not available here")
    if spec in ("auto", "cuda"):
        n = torch.cuda.device_count()
        return torch.device("cuda", local_rank % max(n, 1))
    return torch.device(spec)


def setup(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the process group when launched by torchrun, and choose the device.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        timeout_s: collective timeout.

    Returns:
        The :class:`DistContext`. Call :func:`cleanup` at the end.
    """
    rank, local, world = env_ranks()
    dev = pick_device(device, local)
    if world == 1:
        return DistContext(0, 1, 0, dev, None)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise TmatchError("WORLD_SIZE > 1 but MASTER_ADDR is not set: launch with torchrun")
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s),
                                device_id=dev if dev.type == "cuda" else None)
    return DistContext(rank, world, local, dev, backend)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group (when :func:`setup` joined one)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in a single process)."""
    if ctx.distributed:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over all processes (a copy; the input is unchanged)."""
    out = t.detach().clone()
    if ctx.distributed:
        dev = ctx.device if ctx.backend == "nccl" else torch.device("cpu")
        buf = out.to(dev)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        out = buf.to(t.device)
    return out


def shard(length: int, rank: int, world_size: int, pad: bool = True) -> list[int]:
    """The slots ``0..length-1`` this rank handles: ``rank, rank + world, ...``.

    With ``pad`` every rank gets the same count (wrapping around to the first slots, like
    ``DistributedSampler``), so that all processes run the same number of steps; without it
    the shards are disjoint and cover the slots exactly once (for validation sums).

    >>> shard(5, 0, 2), shard(5, 1, 2), shard(5, 1, 2, pad=False)
    ([0, 2, 4], [1, 3, 0], [1, 3])
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad rank {rank} for world size {world_size}")
    if not pad:
        return list(range(rank, length, world_size))
    if length == 0:
        return []
    per = -(-length // world_size)
    total = per * world_size
    return [s % length for s in range(rank, total, world_size)]


class SlotSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, slot)`` keys for :class:`tmatch.data.torch_dataset.PairDataset`.

    The dataset turns a key into a pair deterministically, so the epoch travels with the key:
    DataLoader workers (persistent or not) need no ``set_epoch`` of their own. The order of
    pairs inside an epoch is already random (the dataset draws a fresh assignment of slots to
    pairs per epoch), so slots are taken in order, sharded across ranks by :func:`shard`.

    Args:
        length: slots per epoch (pairs per epoch).
        rank, world_size: this process's place (see :class:`DistContext`).
        pad: pad shards to equal length (training) or not (validation).
        fixed_epoch: always yield this epoch (validation pairs stay the same every epoch).
        skip: leave out this many of this rank's first keys (unused by the trainer; for callers
            that resume inside an epoch).
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1, pad: bool = True,
                 fixed_epoch: int | None = None, skip: int = 0) -> None:
        self.slots = shard(int(length), rank, world_size, pad)
        self.epoch = 0
        self.fixed_epoch = fixed_epoch
        self.skip = int(skip)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose pairs the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return max(0, len(self.slots) - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        e = self.epoch if self.fixed_epoch is None else self.fixed_epoch
        for s in self.slots[self.skip:]:
            yield (e, s)
