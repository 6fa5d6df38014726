"""The task registry: everything that differs between edit tasks, in one place.

A :class:`~serac.tasks.spec.TaskSpec` says, for one task (``EditRecord.task``):

* ``world_pairs``: the (query, answer) pairs of the world before the edits, which the
  pipeline-trained base model learns (``serac.data.generators.pre_edit_pairs``: true/false
  answers of QA-hard and fc flip with the edit; ConvSent: a response from the dataset);
* ``counterfactual_examples``: the counterfactual model's training examples (ConvSent:
  responses of the edit's sentiment instead of the sentiment word);
* ``ft_pairs``: what the fine-tuning baseline trains on per edit;
* ``scorer``: ES and DD (:mod:`serac.tasks.scorers`): exact match / changed answers for
  generation, accuracy / accuracy drop for fc, the sentiment judge for ConvSent;
* ``dataset``: the dataset its run must train on (QA-hard, fc, ConvSent have their own;
  qa and fact run on any: zsRE, CounterFact, ...);
* ``judge``: a classifier to train before the editor (ConvSent's sentiment judge).
"""

from __future__ import annotations

from collections.abc import Sequence

from serac.data.generators import pre_edit_pairs
from serac.data.schema import EditRecord
from serac.tasks import convsent
from serac.tasks.examples import CounterfactualExample, base_examples, counterfactual_examples
from serac.tasks.scorers import ExactMatchScorer, TrueFalseScorer
from serac.tasks.spec import CfExamples, FtPairs, JudgeSpec, ScorerFactory, TaskContext, TaskSpec, WorldPairs


def _world_default(records: Sequence[EditRecord], ctx: TaskContext) -> list[tuple[str, str]]:
    return base_examples(records)


def _world_flipping(records: Sequence[EditRecord], ctx: TaskContext) -> list[tuple[str, str]]:
    """Pre-edit pairs of QA-hard / fc records, first answer per query kept, sorted like base_examples."""
    out: dict[str, str] = {}
    for rec in records:
        for query, answer in pre_edit_pairs(rec):
            out.setdefault(query, answer)
    return sorted(out.items())


def _cf_default(records: Sequence[EditRecord], ctx: TaskContext, include_edit_input: bool) -> list[CounterfactualExample]:
    return counterfactual_examples(records, include_edit_input=include_edit_input)


def _ft_default(record: EditRecord, ctx: TaskContext) -> list[tuple[str, str]]:
    return [(record.edit_input, record.edit_label)]


def _spec(name: str, dd_kind: str, world: WorldPairs = _world_default, cf: CfExamples = _cf_default,
          ft: FtPairs = _ft_default, scorer: ScorerFactory | None = None, dataset: str | None = None,
          judge: JudgeSpec | None = None, locality: str = "dataset") -> TaskSpec:
    default = TrueFalseScorer() if dd_kind == "accuracy" else ExactMatchScorer()
    return TaskSpec(name, dd_kind, world, cf, ft, scorer or (lambda ctx: default), dataset, judge, locality)


TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _spec("qa", "changed", locality="unrelated"),
        _spec("fact", "changed", locality="same_relation"),
        _spec("qa_hard", "changed", world=_world_flipping, dataset="qa_hard"),
        _spec("fc", "accuracy", world=_world_flipping, dataset="fc"),
        _spec("convsent", "changed", world=convsent.world_pairs, cf=convsent.counterfactual_examples,
              ft=convsent.ft_pairs, scorer=convsent.scorer, dataset="convsent", judge=convsent.JUDGE),
    )
}
"""Task name -> its :class:`TaskSpec` (every task of ``serac.data.schema.TASKS``)."""


def task_spec(task: str) -> TaskSpec:
    if task not in TASK_SPECS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_SPECS)}")
    return TASK_SPECS[task]


def task_of(records: Sequence[EditRecord], default: str = "qa") -> str:
    """The one task of ``records`` (``default`` when there are none); mixed tasks are an error."""
    tasks = sorted({r.task for r in records})
    if len(tasks) > 1:
        raise ValueError(f"records mix tasks {tasks}: train one editor per task")
    return tasks[0] if tasks else default


def spec_of(records: Sequence[EditRecord]) -> TaskSpec:
    return task_spec(task_of(records))


MIXABLE = frozenset({"qa", "fact"})
"""Tasks one editor can be trained on together (same scorer and hooks; a mixture of datasets)."""


def by_task(records: Sequence[EditRecord]) -> list[tuple[TaskSpec, list[EditRecord]]]:
    """``records`` split by task (sorted by task name), each with its spec; mixing is only allowed
    among :data:`MIXABLE` tasks (the others bring their own dataset, judge or scorer)."""
    groups: dict[str, list[EditRecord]] = {}
    for rec in records:
        groups.setdefault(rec.task, []).append(rec)
    if len(groups) > 1 and not set(groups) <= MIXABLE:
        raise ValueError(f"records mix tasks {sorted(groups)}: only {sorted(MIXABLE)} train one editor together")
    return [(task_spec(task), groups[task]) for task in sorted(groups)]


def mixture_name(records: Sequence[EditRecord]) -> str:
    """The records' task, or ``fact+qa`` for a mixture."""
    return "+".join(spec.name for spec, _ in by_task(records)) or task_of(records)
