"""The evaluation protocol's section and the baselines it knows."""

from __future__ import annotations

from dataclasses import dataclass

from serac.config.errors import ConfigError

EVALUATION_BASELINES = ("unedited", "lu", "ft")
"""Baselines ``serac.evaluation.baselines`` knows: the base model alone, lookup, fine-tuning."""
COUNTERFACTUAL_VARIANTS = ("in_context", "causal_lora")
"""Counterfactual kinds SERAC is evaluated with again beside the configured one (``serac_<kind>``)."""


@dataclass(frozen=True)
class EvaluationConfig:
    """The k-edits evaluation protocol (``serac.evaluation.protocol``) and its baselines."""

    ks: tuple[int | str, ...] = (1, 10, 100, 1000, "all")
    """Memory sizes: each k puts groups of k test edits in an empty memory; ``all`` = every test edit."""
    seed: int = 0
    """Seed of the group draws; every method sees the same groups for the same seed."""
    max_queries_per_k: int = 2000
    """Bound on work: groups are drawn for a k until they hold this many in-scope queries (at least one group)."""
    max_groups_per_k: int | None = None
    """A second bound: at most this many groups per k (None: only ``max_queries_per_k`` bounds)."""
    batch_size: int = 32
    """Queries per ``predict`` call; latency is measured per call and divided by its size."""
    lu_threshold: float = 0.6
    """Lookup baseline: cosine above which the nearest edit's label is returned (shared/STACK.md)."""
    ft_steps: int = 20
    """Fine-tuning baseline: optimizer steps on each group's k edits (whatever k is)."""
    ft_lr: float = 1e-4
    """Fine-tuning baseline: AdamW learning rate (no warm-up, cosine decay to 10% over ``ft_steps``)."""
    ft_batch_size: int = 32
    """Fine-tuning baseline: edits per step (capped at k)."""
    baselines: tuple[str, ...] = EVALUATION_BASELINES
    """Which baselines to run next to SERAC: ``unedited``, ``lu``, ``ft``."""
    threshold_candidates: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    """Scope thresholds ``tune_threshold`` tries on validation edits."""
    threshold_lambda: float = 1.0
    """``tune_threshold`` maximises ES - lambda * DD."""
    tune_k: int | str | None = 1000
    """Memory size at which the scope threshold is tuned on validation edits (capped by their
    number); None keeps ``editor.threshold``. False positives grow with memory size, so tune
    at the size the editor will serve."""

    tune_ks: tuple[int, ...] = ()
    """Memory sizes to tune a threshold at each (``EditorConfig.threshold_by_size``: the editor uses
    the one tuned nearest its memory size); empty: one threshold at ``tune_k``. Sizes above the
    validation edits are filled with training-split distractors that are never queried."""
    datasets: tuple[str, ...] = ()
    """Datasets whose test split is evaluated with the same editor; empty: ``training.datasets()``."""
    distractor_splits: tuple[str, ...] = ("val", "train")
    """Splits (of the evaluated dataset) whose edits fill memories larger than its test split
    (never queried); empty: such k are skipped."""
    counterfactual_variants: tuple[str, ...] = ()
    """SERAC again, with the same scope classifier and threshold but another counterfactual model,
    on the same groups (method ``serac_<kind>``): ``in_context`` (the causal base LM with the edit
    in its prompt; needs ``base.kind: causal``) and ``causal_lora`` (LoRA adapters on a pretrained causal
    LM, trained by ``serac train --component variants`` with ``training.causal_lora``)."""
    portability: dict[str, str] | None = None
    """Dataset -> file under ``data.raw_root`` whose rows carry portability probes (``zsre:
    zsre/val.jsonl``): each test edit with a probe is asked its one-hop question (contains-match)."""
    base_cache_dir: str | None = None
    """Keep the frozen base model's answers here across runs (``serac.models.answer_cache``: one
    file per model, settings and weights); None: in memory for one run only."""
    same_subject_per_edit: int = 2
    """Same-subject / other-relation locality queries added per test edit (``serac.evaluation.locality``)."""
    max_edits_per_split: int | None = None
    """Quick runs (the demo): query a seeded subset of at most this many edits of each test and
    validation split; memories larger than it are filled with distractors. None: every edit."""
    max_out_of_scope_per_edit: int | None = None
    """Quick runs: at most this many locality queries per edit, spread over its list. None: all."""

    def __post_init__(self) -> None:
        if not self.ks:
            raise ConfigError("evaluation.ks must not be empty")
        for k in self.ks:
            if not (k == "all" or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)):
                raise ConfigError(f"evaluation.ks: {k!r} is neither a positive integer nor 'all'")
        if self.max_queries_per_k < 1 or (self.max_groups_per_k is not None and self.max_groups_per_k < 1):
            raise ConfigError("evaluation: max_queries_per_k and max_groups_per_k must be >= 1")
        if self.batch_size < 1 or self.ft_steps < 1 or self.ft_batch_size < 1:
            raise ConfigError("evaluation: batch_size, ft_steps and ft_batch_size must be >= 1")
        if self.ft_lr <= 0:
            raise ConfigError("evaluation.ft_lr must be > 0")
        if not -1.0 <= self.lu_threshold <= 1.0:
            raise ConfigError("evaluation.lu_threshold is a cosine: within [-1, 1]")
        unknown = sorted(set(self.baselines) - set(EVALUATION_BASELINES))
        if unknown:
            raise ConfigError(f"evaluation.baselines: unknown {unknown}; expected some of {list(EVALUATION_BASELINES)}")
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.tune_ks):
            raise ConfigError(f"evaluation.tune_ks: positive integers expected, got {list(self.tune_ks)}")
        if self.portability is not None and not (
                isinstance(self.portability, dict)
                and all(isinstance(k, str) and isinstance(v, str) and v for k, v in self.portability.items())):
            raise ConfigError(f"evaluation.portability: expected {{dataset: file}}, got {self.portability!r}")
        bad_variants = sorted(set(self.counterfactual_variants) - set(COUNTERFACTUAL_VARIANTS))
        if bad_variants:
            raise ConfigError(f"evaluation.counterfactual_variants: unknown {bad_variants}; expected some of "
                              f"{list(COUNTERFACTUAL_VARIANTS)}")
        for name in ("max_edits_per_split", "max_out_of_scope_per_edit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"evaluation.{name}: a positive integer or null expected, got {value!r}")
        if self.same_subject_per_edit < 0:
            raise ConfigError("evaluation.same_subject_per_edit must be >= 0")
        bad = sorted(set(self.distractor_splits) - {"train", "val"})
        if bad:
            raise ConfigError(f"evaluation.distractor_splits: unknown splits {bad}")
        if not self.threshold_candidates or any(not 0.0 <= t <= 1.0 for t in self.threshold_candidates):
            raise ConfigError("evaluation.threshold_candidates: need at least one, each within [0, 1]")
