"""Train the counterfactual model and the offline base model by negative log-likelihood.

- Counterfactual model (paper, sec. 3.2): NLL of each in-scope label given
  (edit input, edit label, query), on in-scope queries with their gold edit.
- Offline base model: NLL of the original (pre-edit) answers, so the default
  base model has beliefs for the editor to correct.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from serac.config import TrainConfig
from serac.metrics import accuracy
from serac.models.counterfactual import CounterfactualModel
from serac.models.seq2seq import TextToText
from serac.tasks.examples import CounterfactualExample
from serac.training.loop import TrainHook, TrainResult, train_loop


def eval_subset(n: int, limit: int, seed: int) -> list[int]:
    """A fixed random subset of indices (generation on CPU is slow: evaluate a sample)."""
    if n <= limit:
        return list(range(n))
    return sorted(np.random.default_rng(seed).choice(n, size=limit, replace=False).tolist())


def train_counterfactual(
    model: CounterfactualModel,
    examples: Sequence[CounterfactualExample],
    val_examples: Sequence[CounterfactualExample],
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    eval_limit: int = 64,
    hooks: Sequence[TrainHook] = (),
    desc: str = "counterfactual",
) -> TrainResult:
    """Fit ``model`` to answer in-scope queries from their edit; selects on exact match."""
    examples = list(examples)
    val = [val_examples[i] for i in eval_subset(len(val_examples), eval_limit, cfg.seed)]

    def loss_fn(indices: list[int]) -> torch.Tensor:
        batch = [examples[i] for i in indices]
        return model.loss(
            [e.edit_input for e in batch], [e.edit_label for e in batch], [e.query for e in batch], [e.target for e in batch]
        )

    def eval_fn() -> dict[str, float]:
        answers = model.answer([e.edit_input for e in val], [e.edit_label for e in val], [e.query for e in val])
        return {"exact_match": accuracy(answers, [e.target for e in val])}

    return train_loop(
        model,
        [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}],
        loss_fn,
        len(examples),
        cfg,
        Path(out_dir),
        eval_fn=eval_fn if val else None,
        eval_metric="exact_match",
        higher_is_better=True,
        hooks=hooks,
        desc=desc,
    )


def train_text_to_text(
    model: TextToText,
    pairs: Sequence[tuple[str, str]],
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    eval_limit: int = 64,
    hooks: Sequence[TrainHook] = (),
    desc: str = "base model",
) -> TrainResult:
    """Fit a text-to-text model on (input, target) pairs; selects on exact match over a fixed sample."""
    pairs = list(pairs)
    sample = [pairs[i] for i in eval_subset(len(pairs), eval_limit, cfg.seed)]

    def loss_fn(indices: list[int]) -> torch.Tensor:
        batch = [pairs[i] for i in indices]
        return model.loss([q for q, _ in batch], [a for _, a in batch])

    def eval_fn() -> dict[str, float]:
        return {"exact_match": accuracy(model.generate([q for q, _ in sample]), [a for _, a in sample])}

    return train_loop(
        model,
        [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}],
        loss_fn,
        len(pairs),
        cfg,
        Path(out_dir),
        eval_fn=eval_fn,
        eval_metric="exact_match",
        higher_is_better=True,
        hooks=hooks,
        desc=desc,
    )
