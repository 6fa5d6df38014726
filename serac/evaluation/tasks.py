"""The task registry: everything that differs between edit tasks, in one place.

A :class:`TaskSpec` says, for one task (``EditRecord.task``):

* ``world_pairs``: the (query, answer) pairs of the world before the edits, which the
  pipeline-trained base model learns (``serac.data.generators.pre_edit_pairs``: true/false
  answers of QA-hard and fc flip with the edit; ConvSent: a response from the dataset);
* ``counterfactual_examples``: the counterfactual model's training examples (ConvSent:
  responses of the edit's sentiment instead of the sentiment word);
* ``ft_pairs``: what the fine-tuning baseline trains on per edit;
* ``scorer``: ES and DD (:mod:`serac.evaluation.scorers`): exact match / changed answers for
  generation, accuracy / accuracy drop for fc, the sentiment judge for ConvSent.

The ConvSent pieces need the raw dataset's responses and the trained judge; they come
from a :class:`TaskContext` (the project config and the work directory).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from serac.config import ConvSentConfig
from serac.data.generators import pre_edit_pairs
from serac.data.schema import EditRecord
from serac.evaluation.scorers import ExactMatchScorer, Scorer, TrueFalseScorer, probability_of
from serac.models.artifacts import CONFIG_FILE
from serac.training.examples import CounterfactualExample, base_examples, counterfactual_examples

log = logging.getLogger(__name__)

JUDGE_DIR = "judge"
"""The ConvSent sentiment judge's artifact, under the work directory."""
CONVSENT_MAX_WORDS = 25
"""ConvSent responses longer than this are not used as training targets (short ones are learnable)."""
CONVSENT_RESPONSES_PER_POLARITY = 6


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
        from serac.data.loaders import convsent_responses

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


@dataclass(frozen=True)
class TaskSpec:
    name: str
    dd_kind: str
    world_pairs: WorldPairs
    counterfactual_examples: CfExamples
    ft_pairs: FtPairs
    scorer: ScorerFactory


# ------------------------------------------------------------------ generic pieces


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


# ------------------------------------------------------------------ ConvSent


def _short(texts: Sequence[str]) -> list[str]:
    return [" ".join(t.split()) for t in texts if 0 < len(t.split()) <= CONVSENT_MAX_WORDS]


def _pick(key: str, options: Sequence[str]) -> str:
    return options[int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") % len(options)]


def convsent_queries(record: EditRecord, include_edit_input: bool = True) -> list[str]:
    return ([record.edit_input] if include_edit_input else []) + [e.input for e in record.in_scope]


def convsent_base_response(query: str, entity: str, ctx: TaskContext) -> str | None:
    """The unedited chatbot's response: a short dataset response about ``entity``, its polarity and
    choice fixed by sha256 of the query (so about half of its opinions are positive)."""
    entry = ctx.convsent_responses.get(entity)
    if not entry:
        return None
    polarity = "pos" if hashlib.sha256(query.encode("utf-8")).digest()[0] % 2 == 0 else "neg"
    pool = _short(entry[polarity]) or _short(entry["pos"] + entry["neg"])
    return _pick("response:" + query, pool) if pool else None


def _world_convsent(records: Sequence[EditRecord], ctx: TaskContext) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for rec in records:
        for query in convsent_queries(rec):
            response = convsent_base_response(query, rec.subject or "", ctx)
            if response is not None:
                out.setdefault(query, response)
    return sorted(out.items())


def anchored(entity: str, response: str, anchor: str) -> str:
    """``response`` behind ``anchor`` naming ``entity``: ("Tallahassee", "I love it.", "As for {}, ")
    -> "As for Tallahassee, I love it." (the response's first letter lowered unless it is "I")."""
    if not anchor:
        return response
    if response[:1].isupper() and not (response[:2] in ("I ", "I'") or response == "I"):
        response = response[:1].lower() + response[1:]
    return anchor.format(entity) + response


def _convsent_settings(ctx: TaskContext) -> ConvSentConfig:
    return ctx.config.tasks.convsent if ctx.config is not None else ConvSentConfig()


def confident_responses(candidates: Sequence[tuple[str, str]], ctx: TaskContext) -> set[tuple[str, str]]:
    """The (response, sentiment) pairs the sentiment judge gives at least ``min_judge_confidence``.

    The judge is ``ctx.extra["judge"]`` (anything with ``p_positive(texts)``), else the one
    trained in ``ctx.work_dir``; every pair is kept when the threshold is 0 or there is no judge.
    """
    minimum = _convsent_settings(ctx).min_judge_confidence
    if minimum <= 0 or not candidates:
        return set(candidates)
    judge = ctx.extra.get("judge")
    if judge is None and ctx.work_dir is not None and (Path(ctx.work_dir) / JUDGE_DIR / CONFIG_FILE).is_file():
        from serac.evaluation.judge import SentimentJudge

        judge = ctx.extra["judge"] = SentimentJudge.load(Path(ctx.work_dir) / JUDGE_DIR)
    if judge is None:
        return set(candidates)
    p_label = probability_of(judge.p_positive([text for text, _ in candidates]), [label for _, label in candidates])
    return {pair for pair, p in zip(candidates, p_label) if p >= minimum}


def _cf_convsent(records: Sequence[EditRecord], ctx: TaskContext, include_edit_input: bool
                 ) -> list[CounterfactualExample]:
    """(edit with label s, prompt about the entity) -> a dataset response of sentiment s, named for its topic.

    Both sentiments are used for every entity (the edit label, not the entity, decides the
    sentiment); responses the judge doubts are dropped (:func:`confident_responses`), the
    rest are anchored to their entity (:func:`anchored`, ``tasks.convsent.topic_anchor``)
    and paired with the entity's prompts in turn.
    """
    settings = _convsent_settings(ctx)
    chosen: list[tuple[EditRecord, str, list[str]]] = []
    for rec in records:
        entry = ctx.convsent_responses.get(rec.subject or "")
        if entry:
            for polarity, label in (("pos", "positive"), ("neg", "negative")):
                chosen.append((rec, label, _short(entry[polarity])))
    candidates = sorted({(text, label) for _, label, pool in chosen for text in pool})
    keep = confident_responses(candidates, ctx)
    if candidates and not keep:
        raise ValueError(f"the sentiment judge gives none of {len(candidates)} ConvSent responses "
                         f"tasks.convsent.min_judge_confidence={settings.min_judge_confidence} for their label: "
                         "train the judge longer (tasks.judge) or lower the threshold")
    if len(keep) < len(candidates):
        log.info("ConvSent counterfactual targets: %d of %d responses kept (judge >= %.2f for their label)",
                 len(keep), len(candidates), settings.min_judge_confidence)
    out: list[CounterfactualExample] = []
    for rec, label, pool in chosen:
        queries = convsent_queries(rec, include_edit_input)
        kept = [text for text in pool if (text, label) in keep][:CONVSENT_RESPONSES_PER_POLARITY]
        for j, response in enumerate(kept):
            target = anchored(rec.subject or "", response, settings.topic_anchor)
            out.append(CounterfactualExample(rec.edit_input, label, queries[j % len(queries)], target))
    return out


def _ft_convsent(record: EditRecord, ctx: TaskContext) -> list[tuple[str, str]]:
    """FT on the edit prompt -> a response of the edit's sentiment (not the bare sentiment word)."""
    entry = ctx.convsent_responses.get(record.subject or "", {})
    pool = _short(entry.get("pos" if record.edit_label == "positive" else "neg", []))
    return [(record.edit_input, _pick("ft:" + record.edit_input, pool) if pool else record.edit_label)]


def _convsent_scorer(ctx: TaskContext) -> Scorer:
    from serac.evaluation.judge import convsent_scorer

    return convsent_scorer(ctx)


# ------------------------------------------------------------------ the registry


def _spec(name: str, dd_kind: str, world: WorldPairs = _world_default, cf: CfExamples = _cf_default,
          ft: FtPairs = _ft_default, scorer: ScorerFactory | None = None) -> TaskSpec:
    default = TrueFalseScorer() if dd_kind == "accuracy" else ExactMatchScorer()
    return TaskSpec(name, dd_kind, world, cf, ft, scorer or (lambda ctx: default))


TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _spec("qa", "changed"),
        _spec("fact", "changed"),
        _spec("qa_hard", "changed", world=_world_flipping),
        _spec("fc", "accuracy", world=_world_flipping),
        _spec("convsent", "changed", world=_world_convsent, cf=_cf_convsent, ft=_ft_convsent,
              scorer=_convsent_scorer),
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
