"""The k-edits evaluation protocol (SERAC paper, sec. 5): ES, DD, scope metrics and latency by memory size.

For every memory size k, seeded groups of k distinct test edits are drawn (the same
groups for every method: they depend on the seed, k and the records only), and each
group goes alone into an *empty* memory built by the method's factory. Then:

* in-scope queries are every edit's own ``edit_input`` (``es_edit``) and its labelled
  ``in_scope`` rephrasings (``es_rephrase``); ES is exact match with the label
  (:func:`~serac.metrics.edit_success`), ``es`` pools both kinds;
* out-of-scope queries are the group's ``out_of_scope`` inputs, minus any that is in
  scope of an edit of the same group (a neighbour prompt that is another test edit's
  input is covered by the memory, so a changed answer there is no drawdown);
* DD is chosen by task (``TaskSpec.dd_kind``, :mod:`serac.tasks.registry`): the fraction of answers changed
  against the frozen base model for generation, the accuracy drop for true/false;
  a task-aware :class:`~serac.tasks.scorers.Scorer` (``scorer=``, see
  :mod:`serac.tasks.registry`) replaces both ES and DD (e.g. ConvSent's judge);
* scope metrics use each answer's scope ``score`` (for the editor the very value
  :meth:`SeracEditor.classify` returns; ``predict`` reports it) against the method's
  threshold: in-scope queries are positives, out-of-scope ones negatives.

Metrics pool the queries of all groups of one k (micro average: every query weighs the
same). Base-model answers are computed once per distinct query (the base is frozen), in
batches of their own: a model whose greedy output depends on batch padding can show a
tiny spurious DD. Latency is the wall time of each ``predict`` call divided by its batch
size (scope classifier, counterfactual and base model together). A factory whose
method's ``memory`` is not empty before editing, or does not hold exactly the group's k
edits after, is an error.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from serac import metrics
from serac.config import MemoryConfig
from serac.config.models import scheduled_threshold
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.evaluation.groups import (
    DEFAULT_KS,
    BaseAnswers,
    GroupQueries,
    ProtocolOptions,
    distinct_records,
    draw_groups,
    drawdown_kind,
    group_dirs,
    infer_task,
    resolve_k,
)
from serac.evaluation.results import KMetrics, KSpec, MethodResult
from serac.memory import EditMemory
from serac.models.base import BaseModel
from serac.models.counterfactual import Counterfactual
from serac.tasks.scorers import Scorer, scorer_for_dd_kind

__all__ = [
    "DEFAULT_KS", "DEFAULT_THRESHOLD_CANDIDATES", "BaseAnswers", "EditMethod", "KMetrics", "KSpec", "MethodResult",
    "MethodSpec", "ProtocolOptions", "ThresholdChoice", "draw_groups", "drawdown_kind", "evaluate_editor",
    "serac_method", "tune_threshold",
]

log = logging.getLogger(__name__)


class EditMethod(Protocol):
    """What the protocol needs from an editor or a baseline."""

    def edit(self, records: Sequence[EditRecord]) -> Any: ...

    def predict(self, queries: Sequence[str]) -> Sequence[Any]:
        """One answer object per query, with ``answer`` (str) and, for methods with a scope, ``score``."""
        ...


MethodFactory = Callable[[Path], EditMethod]
"""An empty directory for the group's memory -> a method that holds no edits."""


@dataclass(frozen=True)
class MethodSpec:
    """A method as the protocol runs it."""

    name: str
    factory: MethodFactory | None
    base: BaseModel | None
    """The unedited model DD compares with."""
    threshold: float | None = None
    """Cut-off on the answers' ``score`` for the scope metrics; None: the method has no scope."""
    skip_reason: str | None = None
    """Set when the method does not apply (e.g. fine-tuning a base that is not a HF model)."""
    threshold_by_size: tuple[tuple[int, float], ...] = ()
    """The editor's per-memory-size thresholds (``EditorConfig.threshold_by_size``), if any."""

    def threshold_at(self, n_edits: int) -> float | None:
        """The threshold the method applies with ``n_edits`` in memory (None: no scope)."""
        if self.threshold is None:
            return None
        return scheduled_threshold(self.threshold_by_size, n_edits, self.threshold)


def serac_method(
    editor: SeracEditor, *, name: str = "serac", threshold: float | None = None, memory_config: MemoryConfig | None = None,
    counterfactual: Counterfactual | None = None,
) -> MethodSpec:
    """Run ``editor``'s loaded models with a fresh memory per group (models are shared, never reloaded);
    ``counterfactual`` replaces the editor's own (a variant measured on the same groups)."""
    config = (editor.config if threshold is None
              else dataclasses.replace(editor.config, threshold=threshold, threshold_by_size=()))
    mem_config = memory_config or editor.memory.config

    def factory(root: Path) -> SeracEditor:
        memory = EditMemory.open(root, dataclasses.replace(mem_config, root=str(root)))
        return SeracEditor(editor.scope, counterfactual or editor.counterfactual, editor.base, memory, config)

    return MethodSpec(name, factory, editor.base, config.threshold, threshold_by_size=config.threshold_by_size)


@dataclass
class _Pool:
    """Answers of all groups of one k, pooled before the metrics are computed."""

    edit: list[tuple[str, str, str]] = field(default_factory=list)
    """(query, answer, gold) per edit input."""
    rephrase: list[tuple[str, str, str]] = field(default_factory=list)
    out: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    """(query, edited answer, base answer, gold) per out-of-scope query."""
    out_kinds: list[str] = field(default_factory=list)
    """Locality kind of each ``out`` row (``same_relation``, ``same_subject``, ``unrelated``, ...)."""
    scores_in: list[float] = field(default_factory=list)
    scores_out: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)

    def finish(self, label: str, per_group: int, n_groups: int, scorer: Scorer, threshold: float | None,
               seconds: float) -> KMetrics:
        ins = self.edit + self.rephrase

        def es_of(rows: list[tuple[str, str, str]]) -> float:
            return scorer.edit_success([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

        es, es_edit, es_reph = es_of(ins), es_of(self.edit), es_of(self.rephrase)
        parts_of = getattr(scorer, "es_parts", None)
        es_parts = parts_of([r[0] for r in ins], [r[1] for r in ins], [r[2] for r in ins]) if parts_of else {}
        dd = scorer.drawdown([o[0] for o in self.out], [o[1] for o in self.out], [o[2] for o in self.out],
                             [o[3] for o in self.out])
        dd_kind = scorer.dd_kind
        by_kind: dict[str, float] = {}
        for kind in sorted(set(self.out_kinds)):
            rows = [o for o, k in zip(self.out, self.out_kinds) if k == kind]
            by_kind[kind] = scorer.drawdown([o[0] for o in rows], [o[1] for o in rows], [o[2] for o in rows],
                                            [o[3] for o in rows])
            by_kind[f"n_{kind}"] = len(rows)
        nan = float("nan")
        scope = {"precision": nan, "recall": nan, "fpr": nan, "auroc": nan}
        if threshold is not None:
            labels = [True] * len(self.scores_in) + [False] * len(self.scores_out)
            scope = metrics.scope_metrics(self.scores_in + self.scores_out, labels, threshold)
        return KMetrics(
            k=label, edits_per_group=per_group, n_groups=n_groups, es=es, es_edit=es_edit, es_rephrase=es_reph,
            dd=dd, dd_kind=dd_kind, threshold=threshold, n_queries=len(ins), n_edit_queries=len(self.edit),
            n_rephrase_queries=len(self.rephrase), n_out_of_scope=len(self.out),
            **scope, **metrics.latency_summary(self.latency), seconds=seconds,
            scores_in=tuple(self.scores_in), scores_out=tuple(self.scores_out), es_parts=es_parts,
            dd_by_kind=by_kind,
        )


def _timed_predict(method: EditMethod, queries: list[str], batch_size: int, latency: list[float]) -> dict[str, Any]:
    """Answers by query; per-query seconds of each batch call appended to ``latency``."""
    out: dict[str, Any] = {}
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        began = time.perf_counter()
        answers = list(method.predict(batch))
        latency.append((time.perf_counter() - began) / len(batch))
        if len(answers) != len(batch):
            raise RuntimeError(f"predict returned {len(answers)} answers for {len(batch)} queries")
        out.update(zip(batch, answers))
    return out


def _checked_memory_size(method: EditMethod, expected: int, when: str) -> None:
    memory = getattr(method, "memory", None)
    if memory is not None and len(memory) != expected:
        raise RuntimeError(f"group memory holds {len(memory)} edits {when}, expected {expected}")


@dataclass(frozen=True)
class _Plan:
    label: str
    per_group: int
    """Edits in memory per group (queried edits plus distractors)."""
    groups: list[list[int]]
    distractors: int = 0
    """Edits added beside each group's edits and never queried (memories larger than the test split)."""


def _plan(records: Sequence[EditRecord], ks: Sequence[KSpec], options: ProtocolOptions, n_distractors: int = 0
          ) -> tuple[list[_Plan], list[str]]:
    plans, notes = [], []
    for k in ks:
        per_group = resolve_k(k, len(records))
        if per_group is not None:
            plans.append(_Plan(str(k), per_group, _draw(records, per_group, options)))
        elif isinstance(k, int) and k <= len(records) + n_distractors:
            plans.append(_Plan(str(k), k, [list(range(len(records)))], k - len(records)))
        else:
            notes.append(f"k={k} skipped: only {len(records)} test edits"
                         + (f" and {n_distractors} distractors" if n_distractors else ""))
    return plans, notes


def _distractor_pool(records: Sequence[EditRecord], distractors: Sequence[EditRecord], seed: int) -> list[EditRecord]:
    """Distractor edits in a seeded order, minus any that is a test edit (same id) or shares its input."""
    taken = {r.edit_id for r in records} | {r.edit_input for r in records}
    pool = [d for d in distinct_records(distractors) if d.edit_id not in taken and d.edit_input not in taken]
    order = np.random.default_rng([seed, len(pool), 7]).permutation(len(pool))
    return [pool[int(i)] for i in order]


def _draw(records: Sequence[EditRecord], per_group: int, options: ProtocolOptions) -> list[list[int]]:
    return draw_groups(records, per_group, seed=options.seed, max_groups=options.max_groups,
                       max_queries=options.max_queries)


def evaluate_editor(
    editor: SeracEditor | MethodSpec,
    test_records: Sequence[EditRecord],
    ks: Sequence[KSpec] = DEFAULT_KS,
    options: ProtocolOptions = ProtocolOptions(),
    *,
    task: str | None = None,
    dd_kind: str | None = None,
    base_answers: BaseAnswers | None = None,
    scorer: Scorer | None = None,
    distractors: Sequence[EditRecord] = (),
    locality_kinds: Mapping[str, str] | None = None,
    default_kind: str = "dataset",
) -> MethodResult:
    """Evaluate one method (a SERAC editor or a :class:`MethodSpec`) at every memory size in ``ks``.

    ``task`` defaults to the records' task and picks the DD kind (``dd_kind`` overrides);
    ``scorer`` (default: exact match / the DD kind's) computes ES and DD.
    ``base_answers`` shares the base model's cached answers between methods.
    ``distractors``: for an integer k above the number of test edits, one group holds every
    test edit plus k - n distractors (seeded order; never queried, so they only add false
    positives). ``locality_kinds`` maps an out-of-scope query to its kind, ``default_kind``
    for the others; DD is also reported per kind (``KMetrics.dd_by_kind``).
    """
    spec = editor if isinstance(editor, MethodSpec) else serac_method(editor)
    records = distinct_records(test_records)
    if not records:
        raise ValueError("no test records")
    task = task or infer_task(records)
    dd_kind = scorer.dd_kind if scorer is not None else (dd_kind or drawdown_kind(task, records))
    if dd_kind not in ("changed", "accuracy"):
        raise ValueError(f"dd_kind must be 'changed' or 'accuracy', got {dd_kind!r}")
    scorer = scorer or scorer_for_dd_kind(dd_kind)
    if spec.skip_reason is not None or spec.factory is None or spec.base is None:
        reason = spec.skip_reason or "no method factory or base model"
        log.warning("%s skipped: %s", spec.name, reason)
        return MethodResult(spec.name, task, dd_kind, note=reason, skipped=True)
    base_answers = base_answers or BaseAnswers(spec.base, options.batch_size)
    extra = _distractor_pool(records, distractors, options.seed)
    plans, notes = _plan(records, ks, options, len(extra))
    kinds = dict(locality_kinds or {})
    results = []
    bar = tqdm(total=sum(len(p.groups) for p in plans), desc=f"eval {spec.name}", unit="group",
               disable=not options.progress, leave=False, dynamic_ncols=True)
    with bar, group_dirs(options.work_dir) as new_dir:
        for plan in plans:
            bar.set_postfix(k=plan.label)
            began, pool = time.monotonic(), _Pool()
            for group in plan.groups:
                root = new_dir()
                _evaluate_group(spec, [records[i] for i in group], root, base_answers, options.batch_size, pool,
                                extra[: plan.distractors], lambda q: kinds.get(q, default_kind))
                shutil.rmtree(root, ignore_errors=True)  # bounded disk use over hundreds of groups
                bar.update(1)
            results.append(pool.finish(plan.label, plan.per_group, len(plan.groups), scorer,
                                       spec.threshold_at(plan.per_group), time.monotonic() - began))
    return MethodResult(spec.name, task, dd_kind, tuple(results), note="; ".join(notes))


@dataclass(frozen=True)
class _Scored:
    """One group after editing: the method holding exactly the group's edits, and the group's queries."""

    method: EditMethod
    queries: GroupQueries


def _edited(spec: MethodSpec, group: list[EditRecord], root: Path, distractors: Sequence[EditRecord] = ()) -> _Scored:
    """The method after editing ``group`` plus ``distractors``; only the group's queries are asked."""
    assert spec.factory is not None
    method = spec.factory(root)
    _checked_memory_size(method, 0, "before editing")
    method.edit([*group, *distractors])
    _checked_memory_size(method, len(group) + len(distractors), "after editing")
    return _Scored(method, GroupQueries.of(group))


def _evaluate_group(spec: MethodSpec, group: list[EditRecord], root: Path, base_answers: BaseAnswers,
                    batch_size: int, pool: _Pool, distractors: Sequence[EditRecord] = (),
                    kind_of: Callable[[str], str] = lambda q: "dataset") -> None:
    scored = _edited(spec, group, root, distractors)
    q = scored.queries
    base = base_answers([x for x, _ in q.out])  # first: in full batches (a cached base then serves the method's)
    answers = _timed_predict(scored.method, q.distinct(), batch_size, pool.latency)
    pool.edit += [(x, answers[x].answer, gold) for x, gold in q.edit]
    pool.rephrase += [(x, answers[x].answer, gold) for x, gold in q.rephrase]
    pool.out += [(x, answers[x].answer, b, gold) for (x, gold), b in zip(q.out, base)]
    pool.out_kinds += [kind_of(x) for x, _ in q.out]
    if spec.threshold is not None:
        pool.scores_in += [float(answers[x].score) for x in q.positives()]
        pool.scores_out += [float(answers[x].score) for x, _ in q.out]



# ------------------------------------------------------------------ threshold tuning

DEFAULT_THRESHOLD_CANDIDATES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
OBJECTIVES = ("es_minus_dd", "balanced")


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen scope threshold and what every candidate scored (validation edits, memory size k)."""

    threshold: float
    objective: str
    value: float
    k: int
    table: tuple[dict[str, float], ...]
    """Per candidate: threshold, es, dd (NaN for ``balanced``), recall, fpr, value."""


def tune_threshold(
    editor: SeracEditor,
    val_records: Sequence[EditRecord],
    k: KSpec,
    candidates: Sequence[float] = DEFAULT_THRESHOLD_CANDIDATES,
    options: ProtocolOptions = ProtocolOptions(),
    *,
    objective: str = "es_minus_dd",
    lam: float = 1.0,
    task: str | None = None,
    base_answers: BaseAnswers | None = None,
    scorer: Scorer | None = None,
    distractors: Sequence[EditRecord] = (),
    max_refinements: int = 6,
) -> ThresholdChoice:
    """Pick the editor's scope threshold on validation edits at memory size ``k``.

    False positives grow with the memory (more edits, more near neighbours), so tune at
    the size the editor will serve; a ``k`` above the validation edits holds all of them
    plus ``distractors`` (never queried). Objectives: ``es_minus_dd`` maximises ES - lam * DD
    (answers at every candidate are derived from one pass: the counterfactual answer of
    the best edit when its score is above the candidate, else the base answer);
    ``balanced`` maximises recall - fpr of the scope scores (Youden's J), no generation.
    Ties go to the higher threshold (fewer false positives as the memory grows). When the
    best candidate is the highest one, the grid is refined towards 1 (halving the distance,
    up to ``max_refinements`` times) so that the choice is not an artefact of the grid's top.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    candidates = sorted({float(c) for c in candidates})
    if not candidates or any(not 0.0 <= c <= 1.0 for c in candidates):
        raise ValueError("candidates: need at least one threshold, each within [0, 1]")
    records = distinct_records(val_records)
    extra = _distractor_pool(records, distractors, options.seed)
    per_group = resolve_k(k, len(records)) if records else None
    n_extra = 0
    if per_group is None and records and isinstance(k, int) and k <= len(records) + len(extra):
        per_group, n_extra = k, k - len(records)
    if per_group is None:
        raise ValueError(f"k={k}: only {len(records)} validation edits and {len(extra)} distractors")
    task = task or infer_task(records)
    scorer = scorer or scorer_for_dd_kind(drawdown_kind(task, records))
    spec = serac_method(editor)
    base_answers = base_answers or BaseAnswers(editor.base, options.batch_size)
    groups = _draw(records, per_group, options) if n_extra == 0 else [list(range(len(records)))]
    # Counterfactual answers matter only where some candidate routes to them (and only for ES - DD).
    answer_above = candidates[0] if objective == "es_minus_dd" else None
    rows: list[tuple[str, float, str | None, str, str | None, str]] = []  # role, score, cf, base, gold, query
    with group_dirs(options.work_dir) as new_dir:
        for group in tqdm(groups, desc=f"tune threshold k={per_group}", unit="group", disable=not options.progress,
                          leave=False):
            root = new_dir()
            rows += _scored_rows(_edited(spec, [records[i] for i in group], root, extra[:n_extra]), base_answers,
                                 answer_above, options.batch_size)
            shutil.rmtree(root, ignore_errors=True)

    def row_of(t: float) -> dict[str, float]:
        answers = [cf if cf is not None and score > t else base for _, score, cf, base, _, _ in rows]
        ins = [(r[5], a, r[4]) for a, r in zip(answers, rows) if r[0] == "in" and r[4] is not None]
        outs = [(r[5], a, r[3], r[4]) for a, r in zip(answers, rows) if r[0] == "out"]
        es = scorer.edit_success([r[0] for r in ins], [r[1] for r in ins], [r[2] for r in ins])
        dd = scorer.drawdown([o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs], [o[3] for o in outs])
        if answer_above is None:  # no answers were generated: ES and DD are unknown, not 0
            es = dd = float("nan")
        scope = metrics.scope_metrics([r[1] for r in rows], [r[0] == "in" for r in rows], t)
        if objective == "balanced":
            value = np.nan_to_num(scope["recall"]) - np.nan_to_num(scope["fpr"])
        else:
            value = np.nan_to_num(es) - lam * np.nan_to_num(dd)
        return {"threshold": t, "es": es, "dd": dd, "recall": scope["recall"], "fpr": scope["fpr"],
                "value": float(value)}

    table = [row_of(t) for t in candidates]
    for _ in range(max_refinements):
        best = max(table, key=lambda row: (row["value"], row["threshold"]))
        top = max(row["threshold"] for row in table)
        if best["threshold"] < top or top >= 0.9999:
            break
        table.append(row_of(round(1.0 - (1.0 - top) / 2.0, 6)))
    best = max(table, key=lambda row: (row["value"], row["threshold"]))
    if best["threshold"] == max(row["threshold"] for row in table):
        log.warning("threshold tuning at k=%s: the best threshold %.4f is still the grid's highest", per_group,
                    best["threshold"])
    return ThresholdChoice(best["threshold"], objective, best["value"], per_group, tuple(table))


def _scored_rows(
    scored: _Scored, base_answers: BaseAnswers, answer_above: float | None, batch_size: int
) -> list[tuple[str, float, str | None, str, str | None, str]]:
    """(role, score, counterfactual answer or None, base answer, gold, query) for every query of a group.

    The counterfactual model answers the queries whose best edit scores above ``answer_above``
    (none when it is None), exactly as the editor would route them at that threshold.
    """
    method, q = scored.method, scored.queries
    assert isinstance(method, SeracEditor)
    queries = q.distinct()
    decisions = dict(zip(queries, method.classify(queries)))
    cf: dict[str, str] = {}
    if answer_above is not None:
        routed = [x for x in queries if decisions[x].edit_id is not None and decisions[x].score > answer_above]
        edits = [method.memory.get(decisions[x].edit_id) for x in routed]
        cf = dict(zip(routed, method.counterfactual.answer([e.edit_input for e in edits], [e.edit_label for e in edits],
                                                           routed, batch_size=batch_size)))
    labelled = [(x, gold, "in") for x, gold in q.edit + q.rephrase] + [(x, None, "in") for x in q.unlabelled]
    labelled += [(x, gold, "out") for x, gold in q.out]
    base = dict(zip(queries, base_answers(queries)))
    return [(role, decisions[x].score, cf.get(x), base[x], gold, x) for x, gold, role in labelled]
