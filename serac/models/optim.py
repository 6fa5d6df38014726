"""The step pieces every trainer of these models shares: the data order, the learning-rate schedule,
mixed precision.

Both :func:`serac.training.loop.train_loop` and the fine-tuning baseline
(:func:`serac.evaluation.baselines.fine_tune`) step with them, so they live below both
(like ``transformers.optimization`` beside its models).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from serac.config import TrainConfig


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
