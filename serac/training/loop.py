"""One linear training loop shared by the scope classifier, counterfactual and base models.

Order of each step (nanoGPT-style, one function, no trainer hierarchy):
learning rate -> evaluate / checkpoint -> forward + backward (with accumulation)
-> clip + optimizer step -> log -> stop checks.

Resuming: the data order is a pure function of (seed, step) (see
:class:`StepSampler`), and a checkpoint holds model, optimizer, step and best
metric, so a run killed at any point and started again with the same arguments
continues where its last checkpoint left off and ends in the same state.
"""

from __future__ import annotations

import contextlib
import math
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


class StepSampler:
    """Batches of indices as a pure function of the step: epoch-wise seeded permutations."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < 1:
            raise ValueError("cannot train on an empty dataset")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return self._perms[epoch]

    def batch(self, index: int) -> list[int]:
        """Indices of micro-batch number ``index`` (wraps around epochs)."""
        start = index * self.batch_size
        out: list[int] = []
        while len(out) < self.batch_size:
            epoch, offset = divmod(start + len(out), self.n)
            take = min(self.batch_size - len(out), self.n - offset)
            out.extend(self._perm(epoch)[offset : offset + take].tolist())
        return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Multiplier on the base learning rate: linear warm-up, then cosine decay to 10%."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def autocast_context(cfg: TrainConfig, device: torch.device):
    """bf16/fp16 autocast on CUDA when asked (``auto`` = bf16 on CUDA); nothing on CPU."""
    if device.type != "cuda" or cfg.mixed_precision == "no":
        return contextlib.nullcontext()
    dtype = torch.float16 if cfg.mixed_precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type="cuda", dtype=dtype)


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
) -> TrainResult:
    """Train ``model`` by minimising ``loss_fn(batch_indices)``.

    ``param_groups`` are optimizer groups with their own ``lr`` (the schedule
    multiplies each). ``eval_fn`` returns metrics; ``eval_metric`` among them
    drives early stopping and the best-weights copy, which is loaded back into
    ``model`` at the end. Checkpoints go to ``out_dir/checkpoint``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or next(model.parameters()).device
    seed_everything(cfg.seed)
    sampler = StepSampler(n_examples, cfg.batch_size, cfg.seed)
    groups = [dict(g) for g in param_groups]
    for g in groups:
        g.setdefault("initial_lr", g["lr"])
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.mixed_precision == "fp16")

    state = {"step": 0, "best": None, "bad_evals": 0}
    resumed_from = _load_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state)
    history: list[dict[str, float]] = []
    started = time.monotonic()
    stopped = "max_steps"
    progress = tqdm(total=cfg.max_steps, initial=state["step"], desc=desc, leave=False, dynamic_ncols=True)
    model.train()

    while state["step"] < cfg.max_steps:
        step = state["step"]
        # 1. learning rate for this step
        scale = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * scale

        # 2. evaluate (and keep the best weights) / checkpoint, before the update
        if eval_fn is not None and step > 0 and step % cfg.eval_every == 0:
            if _evaluate(model, eval_fn, eval_metric, higher_is_better, cfg, out_dir, state, history, hooks, step):
                stopped = "early_stopping"
                break
        if step > 0 and step % cfg.checkpoint_every == 0:
            _save_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state)

        # 3. forward + backward over grad_accum micro-batches
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(cfg.grad_accum):
            indices = sampler.batch(step * cfg.grad_accum + micro)
            with autocast_context(cfg, device):
                loss = loss_fn(indices) / cfg.grad_accum
            scaler.scale(loss).backward()
            total += float(loss.detach())
        scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm))
        scaler.step(optimizer)
        scaler.update()
        state["step"] = step + 1

        # 4. log
        metrics = {"train/loss": total, "train/lr_scale": scale, "train/grad_norm": grad_norm}
        for hook in hooks:
            hook.log_metrics(metrics, step=step + 1)
        progress.update(1)
        progress.set_postfix(loss=f"{total:.4f}")

        # 5. stop on the wall-clock budget (checkpoint first so a rerun continues)
        if cfg.max_minutes is not None and time.monotonic() - started > cfg.max_minutes * 60:
            stopped = "time_budget"
            break
    progress.close()

    if eval_fn is not None and stopped != "early_stopping":
        _evaluate(model, eval_fn, eval_metric, higher_is_better, cfg, out_dir, state, history, hooks, state["step"])
    _save_checkpoint(out_dir / CHECKPOINT_DIR, model, optimizer, state)
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


def _evaluate(model, eval_fn, metric, higher, cfg, out_dir, state, history, hooks, step) -> bool:
    """Run ``eval_fn``; save best weights on improvement. Returns True when patience ran out."""
    model.eval()
    with torch.no_grad():
        metrics = {k: float(v) for k, v in eval_fn().items()}
    model.train()
    if metric not in metrics:
        raise KeyError(f"eval_fn returned {sorted(metrics)}, no {metric!r} to select on")
    history.append({"step": float(step), **metrics})
    for hook in hooks:
        hook.log_metrics({f"val/{k}": v for k, v in metrics.items()}, step=step)
    value = metrics[metric]
    best = state["best"]
    if best is None or (value > best if higher else value < best):
        state["best"], state["bad_evals"] = value, 0
        tmp = out_dir / f".{BEST_WEIGHTS}.tmp"
        save_model(model, str(tmp))
        tmp.replace(out_dir / BEST_WEIGHTS)
        return False
    state["bad_evals"] += 1
    return cfg.patience is not None and state["bad_evals"] >= cfg.patience


def _save_checkpoint(path: Path, model, optimizer, state: dict) -> None:
    with atomic_dir(path) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(
            {"optimizer": optimizer.state_dict(), "state": dict(state), "torch_rng": torch.get_rng_state()},
            tmp / "trainer.pt",
        )


def _load_checkpoint(path: Path, model, optimizer, state: dict) -> int:
    """Restore a checkpoint if one exists; returns the step resumed from (0 if none)."""
    if not (path / "trainer.pt").exists():
        return 0
    load_model(model, str(path / "model.safetensors"), device=str(next(model.parameters()).device))
    saved = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    state.update(saved["state"])
    torch.set_rng_state(saved["torch_rng"])  # dropout masks continue as in an uninterrupted run
    return int(state["step"])
