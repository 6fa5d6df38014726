"""What a task is: :class:`TaskSpec` (its hooks and settings), :class:`JudgeSpec` (a classifier its
scorer needs) and :class:`TaskContext` (what the hooks may read beyond the records)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from serac.data.schema import EditRecord
from serac.tasks.examples import CounterfactualExample
from serac.tasks.scorers import Scorer


@dataclass
class TaskContext:
    """What task hooks may need beyond the records: settings, the raw data, trained judges."""

    config: Any = None
    """The :class:`~serac.config.ProjectConfig` (None in unit tests of the plain tasks)."""
    work_dir: Path | None = None
    responses: dict[str, dict[str, list[str]]] | None = None
    """ConvSent ``{entity: {"pos": [...], "neg": [...]}}``; read from ``data.raw_root/convsent`` when None."""
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def convsent_responses(self) -> dict[str, dict[str, list[str]]]:
        if self.responses is not None:
            return self.responses
        from serac.data.loaders import convsent_responses  # deferred: only ConvSent reads the raw files

        root = Path(self.config.data.raw_root) / "convsent"
        merged: dict[str, dict[str, list[str]]] = {}
        for path in sorted(root.glob("*.jsonl")) + sorted(root.glob("*.json")):
            for entity, entry in convsent_responses(path).items():
                slot = merged.setdefault(entity, {"pos": [], "neg": []})
                slot["pos"] += entry["pos"]
                slot["neg"] += entry["neg"]
        return merged


WorldPairs = Callable[[Sequence[EditRecord], TaskContext], list[tuple[str, str]]]
CfExamples = Callable[[Sequence[EditRecord], TaskContext, bool], list[CounterfactualExample]]
FtPairs = Callable[[EditRecord, TaskContext], list[tuple[str, str]]]
ScorerFactory = Callable[[TaskContext], Scorer]


class Judge(Protocol):
    def accuracy(self, pairs: Sequence[tuple[str, str]]) -> float: ...


@dataclass(frozen=True)
class JudgeSpec:
    """A text classifier the task's scorer reads, trained by the pipeline before the editor's components
    (``serac.training.judge``): on the pairs of the train split's groups, measured on the test split's."""

    directory: str
    """Its artifact, under the work directory."""
    labels: tuple[str, ...]
    groups: Callable[[Sequence[EditRecord]], list[str]]
    """The records' groups whose texts the judge learns (ConvSent: the entities)."""
    pairs: Callable[[Sequence[str], TaskContext], list[tuple[str, str]]]
    """(text, label) pairs of those groups."""
    load: Callable[[Path, Any], Judge]
    """(artifact directory, device) -> the trained judge."""
    max_input_length: int = 64


@dataclass(frozen=True)
class TaskSpec:
    """Everything that differs between edit tasks (``EditRecord.task``); :mod:`serac.tasks.registry` has one per task."""

    name: str
    dd_kind: str
    """``changed`` (share of out-of-scope answers that differ from the base model's) or ``accuracy``."""
    world_pairs: WorldPairs
    """The (query, answer) pairs of the world before the edits, which the pipeline-trained base model learns."""
    counterfactual_examples: CfExamples
    ft_pairs: FtPairs
    """What the fine-tuning baseline trains on per edit."""
    scorer: ScorerFactory
    dataset: str | None = None
    """The dataset a run of this task must train on (``training.dataset``); None: any dataset of the task."""
    judge: JudgeSpec | None = None
    locality: str = "dataset"
    """What the dataset's own out-of-scope queries are, as a locality kind of the evaluation:
    ``same_relation`` (another subject, the edit's relation: CounterFact), ``unrelated`` (zsRE's NQ)."""
