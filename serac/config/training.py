"""Training sections: one run (:class:`TrainConfig`) and the editor's training data and runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from serac.config.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """One training run (scope classifier, counterfactual model or base model)."""

    max_steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    """Optimizer step every ``grad_accum`` micro-batches (global batch = batch_size x grad_accum)."""
    lr: float = 1e-4
    scalar_lr: float = 1e-2
    """Learning rate of the scope classifier's two calibration scalars (they barely move at ``lr``)."""
    weight_decay: float = 0.0
    warmup_steps: int = 50
    clip_norm: float = 1.0
    eval_every: int = 200
    checkpoint_every: int = 200
    patience: int | None = None
    """Stop after this many evaluations without improvement (None: never stop early)."""
    max_minutes: float | None = None
    """Wall-clock budget; training stops cleanly (with a checkpoint) when it runs out."""
    seed: int = 0
    mixed_precision: str = "auto"
    """``auto`` (bf16 on CUDA, none on CPU), ``bf16``, ``fp16`` or ``no``."""

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("train: max_steps, batch_size and grad_accum must be >= 1")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise ConfigError(f"train.mixed_precision: unknown {self.mixed_precision!r}")


@dataclass(frozen=True)
class TrainingConfig:
    """Per-component training runs, plus the data they read."""

    dataset: str = "counterfact"
    """The primary prepared dataset (``counterfact``, ``zsre``, ...): trains the editor alone when
    ``mixture`` is empty; its test split is the one the registry's promotion gate compares."""
    mixture: dict[str, float] | None = None
    """Datasets trained on together, each with its repeat factor (``{counterfact: 1.0, zsre: 3.0}``:
    every CounterFact train edit once, every zsRE one three times; 0.5 keeps half). Empty: ``dataset``
    alone (an overlay writes ``mixture: null`` to train one dataset). Drawn by
    ``serac.training.mixture.mix`` (seeded, deterministic)."""
    data_dir: str = "data/validated"
    """Where the splits are read: validated splits (``<dataset>/<split>/passed.parquet``),
    or prepared ones (``<dataset>/<split>.parquet``)."""
    mixture_seed: int = 0
    """Seeds the mixture's draws (``serac.training.mixture``)."""
    max_train_edits: int | None = None
    """Cap on training edits (small-data mode); None uses the whole train split."""
    max_val_edits: int = 200
    hard_negatives: int = 2
    """Nearest other edits (by embedding) used as negatives per positive, for the scope classifier."""
    relation_negatives: int = 0
    """Same-subject / other-relation queries per edit used as scope negatives
    (``serac.data.relations``: relation templates mined from the other training edits)."""
    label_swap_copies: int = 0
    """Counterfactual training: variants per example with another edit's label as edit label and
    target (``serac.training.examples.label_swap_examples``); teaches copying over memorising."""
    scope: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-5, batch_size=32))
    """The scope classifier's embedding part (every scope kind has one)."""
    scope_cross: TrainConfig = field(default_factory=lambda: TrainConfig(lr=5e-5, batch_size=32))
    """Its cross-encoder (scope kinds ``rerank`` and ``cross_encoder``): one aligned pair per example,
    where the embedding sees a whole in-batch matrix, so it needs more steps of its own."""
    counterfactual: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-4, batch_size=32))
    causal_lora: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=150, lr=2e-4, batch_size=16, eval_every=75, checkpoint_every=75))
    """The ``causal_lora`` counterfactual variant (``evaluation.counterfactual_variants``): LoRA adapters
    on a pretrained causal LM, trained on the same examples as the counterfactual model. The defaults
    are a short CPU run; a GPU worker trains the full one with more steps."""
    base: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-4, batch_size=32))

    def __post_init__(self) -> None:
        if self.mixture is None:
            object.__setattr__(self, "mixture", {})
        if not isinstance(self.mixture, dict):
            raise ConfigError(f"training.mixture: expected a mapping dataset -> repeat factor, got {self.mixture!r}")
        for name, weight in self.mixture.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
                raise ConfigError(f"training.mixture.{name}: repeat factor must be a number > 0, got {weight!r}")
        if self.mixture and self.dataset not in self.mixture:
            raise ConfigError(f"training.dataset {self.dataset!r} (the primary dataset) must be one of "
                              f"training.mixture's datasets {sorted(self.mixture)}")
        if self.hard_negatives < 0 or self.relation_negatives < 0 or self.label_swap_copies < 0:
            raise ConfigError("training: hard_negatives, relation_negatives and label_swap_copies must be >= 0")

    def datasets(self) -> tuple[str, ...]:
        """The datasets the editor trains on: the primary one first, then the mixture's others (sorted)."""
        return (self.dataset, *sorted(set(self.mixture) - {self.dataset}))
