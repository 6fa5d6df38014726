"""Edit-task sections: generated tasks, ConvSent, which tasks run."""

from __future__ import annotations

from dataclasses import dataclass, field

from serac.config.errors import ConfigError
from serac.config.training import TrainConfig


@dataclass(frozen=True)
class GenerateConfig:
    """``serac generate``: the generated tasks' source datasets and sizes (``serac.data.generate``)."""

    sources: tuple[str, ...] = ("zsre", "counterfact")
    """Prepared datasets (task ``qa`` or ``fact``) the QA-hard and fc records are generated from."""
    neighbours: int = 2
    """Nearest other source edits (MiniLM cosine of edit inputs) used as hard negatives."""
    max_source_edits: dict[str, int] = field(default_factory=lambda: {"train": 1000, "val": 150, "test": 300})
    """Per split: the first this many records of each source (file order)."""

    def __post_init__(self) -> None:
        if not self.sources or self.neighbours < 0:
            raise ConfigError("tasks.generate: need at least one source and neighbours >= 0")


@dataclass(frozen=True)
class ConvSentConfig:
    """How ConvSent's counterfactual model is taught (``tasks.convsent``; docs/tasks.md)."""

    topic_anchor: str = "As for {}, "
    """Put before every counterfactual training target, ``{}`` -> the entity ("" = none). ConvSent's
    responses rarely name their entity ("I love it."), so a model trained on them alone cannot
    stay on the topic of an entity it never saw; with the anchor it learns to name the topic
    it was asked about (copied from the prompt)."""
    min_judge_confidence: float = 0.0
    """Counterfactual training targets that the trained sentiment judge gives less than this
    probability of their dataset label are dropped (the lists hold noise such as "I do not have a
    negative position." under ``pos``); 0 keeps every target. Measured at 0.95: the same ES as 0
    (docs/tasks.md), so the default keeps the evaluation judge out of training."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_judge_confidence < 1.0:
            raise ConfigError("tasks.convsent.min_judge_confidence must be in [0, 1), "
                              f"got {self.min_judge_confidence}")
        if self.topic_anchor and self.topic_anchor.count("{}") != 1:
            raise ConfigError("tasks.convsent.topic_anchor must hold one '{}' for the entity, "
                              f"got {self.topic_anchor!r}")


@dataclass(frozen=True)
class TasksConfig:
    """Which edit tasks ``serac tasks run`` trains and evaluates: one editor per task, each with its overlay."""

    selected: tuple[str, ...] = ("fact",)
    overlays: dict[str, str] = field(default_factory=dict)
    """Task -> overlay file (e.g. ``qa_hard: params.qa_hard.yaml``); a task without one uses params.yaml as is."""
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    judge: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=300, lr=5e-5, eval_every=1000000))
    """ConvSent's sentiment judge (a MiniLM classifier trained on the train entities' responses)."""
    init_counterfactual: str | None = None
    """A trained counterfactual-model artifact the task's counterfactual model starts from (warm start,
    e.g. ``artifacts/work/counterfactual``, CounterFact's); None: ``counterfactual.name_or_path``."""
    convsent: ConvSentConfig = field(default_factory=ConvSentConfig)
