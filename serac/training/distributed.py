"""Data-parallel training under ``torchrun`` / ``accelerate launch`` (DistributedDataParallel).

A launcher sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process's environment;
:func:`init_distributed` joins the process group they describe (``nccl`` on CUDA, ``gloo``
on CPU) and is a no-op in a plain single process, so every training entry point runs
unchanged with or without a launcher.

How a step is split (see :func:`serac.training.loop.train_loop`): every rank draws the same
global batch from the seeded sampler and keeps its contiguous shard of it
(:func:`shard_indices`); each shard's loss is weighted by its share of the batch, and DDP
averages the gradients, so for a loss that is a mean over examples the update equals the
single-process one for the same seed and global batch. Rank 0 alone writes checkpoints,
best weights, MLflow metrics and the progress bar; the others wait at a barrier.
Checkpoints are read by every rank, so ``out_dir`` must be on storage all ranks see
(always true on one machine).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
"""How long a rank waits at a collective (e.g. while rank 0 evaluates) before giving up."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel job; ``world_size == 1`` is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (the values themselves in a single process)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def _collective_device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """True when a launcher (torchrun, accelerate) started this process as one of several."""
    env = os.environ if environ is None else environ
    return int(env.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_type: str | None = None, environ: Mapping[str, str] | None = None) -> DistContext:
    """Join the launcher's process group (idempotent); a single-process context without a launcher.

    ``device_type`` is where the model trains: ``cuda`` selects ``nccl`` and the GPU
    ``LOCAL_RANK`` (so ``.to("cuda")`` lands on this rank's GPU); anything else ``gloo``.
    Default: ``cuda`` when available.
    """
    env = os.environ if environ is None else environ
    if dist.is_available() and dist.is_initialized():
        return current_context()
    if not launched(env):
        return DistContext()
    missing = [name for name in LAUNCHER_VARS if name not in env]
    if missing:
        raise RuntimeError(f"WORLD_SIZE > 1 but {missing} unset: start the job with torchrun or accelerate launch")
    rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    use_cuda = (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda"
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=DEFAULT_TIMEOUT)
    return DistContext(rank, world, local, dist.get_backend())


def current_context() -> DistContext:
    """The context of an initialised process group, else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    rank = dist.get_rank()
    return DistContext(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)), dist.get_backend())


def shutdown_distributed(wait: bool = True) -> None:
    """Leave the process group (end of a launched job; ``wait``: after every rank got here)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def shard_indices(indices: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's contiguous share of a global batch (sizes differ by at most one)."""
    if len(indices) < world_size:
        raise ValueError(f"global batch of {len(indices)} cannot be split over {world_size} processes: "
                         "raise the batch size to at least the number of processes")
    base, extra = divmod(len(indices), world_size)
    start = rank * base + min(rank, extra)
    return list(indices[start : start + base + (1 if rank < extra else 0)])


def on_main(ctx: DistContext, fn: Callable[[], T]) -> T | None:
    """Run ``fn`` on rank 0 only (file writes, MLflow); every rank waits until it is done."""
    result = fn() if ctx.is_main else None
    ctx.barrier()
    return result


class _LossModule(torch.nn.Module):
    """``loss_fn(indices)`` as a module over ``model``'s parameters, so DDP can wrap any loss."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable[[list[int]], torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, indices: list[int]) -> torch.Tensor:
        return self.loss_fn(indices)


@dataclass
class ShardedLoss:
    """The data-parallel loss of one micro-batch: this rank's shard through DDP, weighted."""

    ctx: DistContext
    ddp: torch.nn.parallel.DistributedDataParallel

    def __call__(self, indices: Sequence[int]) -> torch.Tensor:
        shard = shard_indices(indices, self.ctx.rank, self.ctx.world_size)
        # DDP averages gradients over ranks; weighting each shard's mean loss by its share
        # (x world size) makes that average the gradient of the global batch's mean loss.
        weight = len(shard) * self.ctx.world_size / len(indices)
        return self.ddp(shard) * weight

    def no_sync(self, skip: bool) -> contextlib.AbstractContextManager[Any]:
        """Skip the gradient all-reduce on all but the last accumulation micro-batch."""
        return self.ddp.no_sync() if skip else contextlib.nullcontext()


def sharded_loss(
    ctx: DistContext, model: torch.nn.Module, loss_fn: Callable[[list[int]], torch.Tensor]
) -> ShardedLoss:
    """Wrap ``model`` (already on this rank's device) in DDP; rank 0's weights are broadcast to all."""
    device = next(model.parameters()).device
    if device.type == "cuda" and device.index != ctx.local_rank:
        raise RuntimeError(f"rank {ctx.rank}: model on {device}, expected cuda:{ctx.local_rank} "
                           "(call init_distributed before building the model)")
    ddp = torch.nn.parallel.DistributedDataParallel(
        _LossModule(model, loss_fn),
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,  # e.g. an encoder's pooler that mean pooling never touches
    )
    return ShardedLoss(ctx, ddp)


@contextlib.contextmanager
def distributed_job(device_type: str | None = None) -> Iterator[DistContext]:
    """``with distributed_job() as ctx:`` around a launched entry point; leaves the group at the end."""
    ctx = init_distributed(device_type)
    try:
        yield ctx
    except BaseException:
        if ctx.enabled:
            shutdown_distributed(wait=False)  # the other ranks fail at their next collective
        raise
    if ctx.enabled:
        shutdown_distributed()
