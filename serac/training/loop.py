"""One linear training loop shared by the scope classifier, counterfactual and base models.

Order of each step (nanoGPT-style, one function, no trainer hierarchy):
learning rate -> evaluate / checkpoint -> forward + backward (with accumulation)
-> clip + optimizer step -> log -> stop checks.

Resuming: the data order is a pure function of (seed, step) (see
:class:`StepSampler`), and a checkpoint holds model, optimizer, RNG, step and best
metric (safetensors + JSON, :mod:`serac.training.checkpoint`), so a run killed at any point and started again with the same arguments
continues where its last checkpoint left off and ends in the same state.

Under ``torchrun`` / ``accelerate launch`` the same loop trains data-parallel
(:mod:`serac.training.distributed`): each rank computes its shard of every global
batch through DistributedDataParallel, rank 0 alone evaluates, checkpoints, logs
and shows progress, and the others follow its decisions.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from tqdm.auto import tqdm

from serac.config import TrainConfig
from serac.io import atomic_dir
from serac.models.optim import StepSampler, autocast_context, lr_at
from serac.training.checkpoint import has_trainer_state, load_trainer_state, save_trainer_state
from serac.training.distributed import DistContext, ShardedLoss, init_distributed, sharded_loss

CHECKPOINT_DIR = "checkpoint"
BEST_WEIGHTS = "best.safetensors"


class TrainHook(Protocol):
    """Receives metrics; the MLflow logger implements this."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...


@dataclass(frozen=True)
class PrefixedHook:
    """Logs through ``hook`` with ``prefix`` on every key (several components in one run)."""

    hook: TrainHook
    prefix: str

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.hook.log_metrics({self.prefix + k: v for k, v in metrics.items()}, step=step)


def prefixed(hooks: Sequence[TrainHook], prefix: str) -> list[TrainHook]:
    return [PrefixedHook(h, prefix) for h in hooks]


@dataclass
class TrainResult:
    steps: int
    """Optimizer steps taken in total (including those before a resume)."""
    resumed_from: int
    best_metric: float | None
    stopped: str
    """Why training ended: ``max_steps``, ``early_stopping`` or ``time_budget``."""
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_loop(
    model: torch.nn.Module,
    param_groups: Sequence[dict[str, Any]],
    loss_fn: Callable[[list[int]], torch.Tensor],
    n_examples: int,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    eval_fn: Callable[[], dict[str, float]] | None = None,
    eval_metric: str = "loss",
    higher_is_better: bool = False,
    hooks: Sequence[TrainHook] = (),
    desc: str = "train",
    device: torch.device | None = None,
    dist_ctx: DistContext | None = None,
) -> TrainResult:
    """Train ``model`` by minimising ``loss_fn(batch_indices)``.

    ``param_groups`` are optimizer groups with their own ``lr`` (the schedule
    multiplies each). ``eval_fn`` returns metrics; ``eval_metric`` among them
    drives early stopping and the best-weights copy, which is loaded back into
    ``model`` at the end. Checkpoints go to ``out_dir/checkpoint``.

    ``dist_ctx`` (default: the launcher's process group, joined if need be) makes the
    run data-parallel when it spans several processes; ``cfg.batch_size`` stays the
    global batch.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or next(model.parameters()).device
    ctx = dist_ctx if dist_ctx is not None else init_distributed(device.type)
    hooks = hooks if ctx.is_main else ()
    seed_everything(cfg.seed)
    sampler = StepSampler(n_examples, cfg.batch_size, cfg.seed)
    groups = [dict(g) for g in param_groups]
    for g in groups:
        g.setdefault("initial_lr", g["lr"])
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.mixed_precision == "fp16")

    state = {"step": 0, "best": None, "bad_evals": 0}
    resumed_from = _load_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state)
    sharded: ShardedLoss | None = sharded_loss(ctx, model, loss_fn) if ctx.enabled else None
    history: list[dict[str, float]] = []
    started = time.monotonic()
    stopped = "max_steps"
    progress = tqdm(total=cfg.max_steps, initial=state["step"], desc=desc, leave=False, dynamic_ncols=True,
                    disable=not ctx.is_main)
    model.train()

    while state["step"] < cfg.max_steps:
        step = state["step"]
        # 1. learning rate for this step
        scale = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * scale

        # 2. evaluate (and keep the best weights) / checkpoint, before the update
        if eval_fn is not None and step > 0 and step % cfg.eval_every == 0:
            if _evaluate(model, eval_fn, eval_metric, higher_is_better, cfg, out_dir, state, history, hooks, step,
                         ctx):
                stopped = "early_stopping"
                break
        if step > 0 and step % cfg.checkpoint_every == 0:
            _save_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state, ctx)

        # 3. forward + backward over grad_accum micro-batches (this rank's shard of each)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.grad_accum):
            indices = sampler.batch(step * cfg.grad_accum + micro)
            if sharded is None:
                with autocast_context(cfg, device):
                    loss = loss_fn(indices) / cfg.grad_accum
                scaler.scale(loss).backward()
            else:
                with sharded.no_sync(micro < cfg.grad_accum - 1):
                    with autocast_context(cfg, device):
                        loss = sharded(indices) / cfg.grad_accum
                    scaler.scale(loss).backward()
            total += float(loss.detach())
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm))
        scaler.step(optimizer)
        scaler.update()
        state["step"] = step + 1
        over_budget = cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60
        if ctx.enabled:  # the global batch's loss; every rank stops when any one is out of time
            summed, late = ctx.sum([total, float(over_budget)])
            total, over_budget = summed / ctx.world_size, late > 0

        # 4. log
        metrics = {"train/loss": total, "train/lr_scale": scale, "train/grad_norm": grad_norm}
        for hook in hooks:
            hook.log_metrics(metrics, step=step + 1)
        progress.update(1)
        progress.set_postfix(loss=f"{total:.4f}")

        # 5. stop on the wall-clock budget (checkpoint first so a rerun continues)
        if over_budget:
            stopped = "time_budget"
            break
    progress.close()

    if eval_fn is not None and stopped != "early_stopping":
        _evaluate(model, eval_fn, eval_metric, higher_is_better, cfg, out_dir, state, history, hooks, state["step"],
                  ctx)
    _save_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state, ctx)
    del sharded  # drops DDP's gradient hooks from the parameters
    if eval_fn is not None and (out_dir / BEST_WEIGHTS).exists():
        load_model(model, str(out_dir / BEST_WEIGHTS), device=str(device))
    model.eval()
    return TrainResult(
        steps=state["step"],
        resumed_from=resumed_from,
        best_metric=state["best"],
        stopped=stopped,
        seconds=time.monotonic() - started,
        history=history,
    )


def _evaluate(model, eval_fn, metric, higher, cfg, out_dir, state, history, hooks, step,
              ctx: DistContext = DistContext()) -> bool:
    """Run ``eval_fn``; save best weights on improvement. Returns True when patience ran out.

    Data-parallel: rank 0 evaluates and saves, every rank applies its metrics.
    """
    metrics: dict[str, float] | None = None
    if ctx.is_main:
        model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in eval_fn().items()}
        model.train()
    metrics = ctx.broadcast(metrics)
    assert metrics is not None
    if metric not in metrics:
        raise KeyError(f"eval_fn returned {sorted(metrics)}, no {metric!r} to select on")
    history.append({"step": float(step), **metrics})
    for hook in hooks:
        hook.log_metrics({f"val/{k}": v for k, v in metrics.items()}, step=step)
    value = metrics[metric]
    best = state["best"]
    if best is None or (value > best if higher else value < best):
        state["best"], state["bad_evals"] = value, 0
        if ctx.is_main:
            tmp = out_dir / f".{BEST_WEIGHTS}.tmp"
            save_model(model, str(tmp))
            tmp.replace(out_dir / BEST_WEIGHTS)
        ctx.barrier()  # the best weights are on disk before any rank may read them
        return False
    state["bad_evals"] += 1
    return cfg.patience is not None and state["bad_evals"] >= cfg.patience


def _save_checkpoint(path: Path, model, optimizer, state: dict, ctx: DistContext = DistContext()) -> None:
    """Rank 0 writes (every rank holds the same weights and optimizer state); the others wait."""
    if ctx.is_main:
        with atomic_dir(path) as tmp:
            save_model(model, str(tmp / "model.safetensors"))
            save_trainer_state(tmp, optimizer, state)
    ctx.barrier()


def _load_checkpoint(path: Path, model, optimizer, state: dict) -> int:
    """Restore a checkpoint if one exists; returns the step resumed from (0 if none).

    Safetensors + JSON only (:mod:`serac.training.checkpoint`): nothing is unpickled.
    """
    if not has_trainer_state(path):
        return 0
    restored = load_trainer_state(path, optimizer)
    load_model(model, str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    state.update(restored)
    return int(state["step"])
