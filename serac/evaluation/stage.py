"""The evaluate stage: tune the scope threshold on validation edits, run SERAC and the
baselines on the test split for every memory size k, and write metrics, rows and plots.

Outputs in ``out_dir``: ``metrics.json`` (DVC metrics), ``es_dd_vs_k.json`` (DVC plots
rows), ``es_dd_vs_k.png``, ``scope_scores.png``, ``threshold.json`` (read by the package
stage) and ``summary.md``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from serac.config import ProjectConfig
from serac.data.portability import PortabilityProbe, read_portability
from serac.data.prepare import read_split
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.editor.workdir import assemble_editor, load_variants
from serac.evaluation.baselines import all_methods, evaluate_all
from serac.evaluation.groups import BaseAnswers, cap_out_of_scope, distinct_records, subsample_edits
from serac.evaluation.locality import with_same_subject
from serac.evaluation.portability import PortabilityResult, evaluate_portability, probed_records
from serac.evaluation.protocol import ProtocolOptions, ThresholdChoice, tune_threshold
from serac.evaluation.report import (
    plot_es_dd_vs_k,
    plot_result_scores,
    results_table,
    write_metrics_json,
    write_metrics_rows,
)
from serac.evaluation.results import MethodResult
from serac.io import write_bytes, write_json
from serac.memory import EditMemory
from serac.models.answer_cache import cached_base_model
from serac.tasks import MIXABLE, TaskContext, spec_of
from serac.tasks.scorers import Scorer

THRESHOLD_FILE = "threshold.json"
PORTABILITY_FILE = "portability.json"

log = logging.getLogger(__name__)


@dataclass
class EvaluationRun:
    results: list[MethodResult]
    """The primary dataset's results (``training.dataset``: the registry's gate compares these)."""
    threshold: float
    choice: ThresholdChoice | None
    seconds: float
    files: dict[str, Path]
    by_dataset: dict[str, list[MethodResult]] = field(default_factory=dict)
    """Every evaluated dataset's results, the primary one included, with the same editor."""
    schedule: tuple[tuple[int, float], ...] = ()
    """Thresholds tuned per memory size (``evaluation.tune_ks``); empty: ``threshold`` alone."""
    choices: tuple[ThresholdChoice, ...] = ()
    portability: dict[str, list[PortabilityResult]] = field(default_factory=dict)
    """Per dataset with probes (``evaluation.portability``): every method's portability accuracy."""


@dataclass(frozen=True)
class EvalSplits:
    """What the evaluation reads of one dataset: test edits (with same-subject locality queries),
    validation edits, and the distractors of memories larger than the test split."""

    name: str
    test: list[EditRecord]
    val: list[EditRecord]
    distractors: list[EditRecord]
    kinds: dict[str, str]
    """Out-of-scope query -> locality kind, for the added same-subject queries."""


def load_eval_splits(config: ProjectConfig, dataset: str) -> EvalSplits:
    """``dataset``'s splits as the evaluation uses them (``evaluation.same_subject_per_edit`` /
    ``distractor_splits``, ``max_edits_per_split``, ``max_out_of_scope_per_edit``); the same-subject
    templates are mined from the whole test split, before any subset is drawn."""
    tc, ec = config.training, config.evaluation
    test = read_split(tc.data_dir, dataset, "test")
    val = read_split(tc.data_dir, dataset, "val")
    kinds: dict[str, str] = {}
    if test and {r.task for r in test} <= MIXABLE:  # subject + relation prompts (other tasks: their own scopes)
        test, kinds = with_same_subject(test, ec.same_subject_per_edit, ec.seed)
        val, _ = with_same_subject(val, ec.same_subject_per_edit, ec.seed)
    queried_val = cap_out_of_scope(subsample_edits(val, ec.max_edits_per_split, ec.seed), ec.max_out_of_scope_per_edit)
    test = cap_out_of_scope(subsample_edits(test, ec.max_edits_per_split, ec.seed), ec.max_out_of_scope_per_edit)
    distractors = [r for split in ec.distractor_splits
                   for r in (val if split == "val" else read_split(tc.data_dir, dataset, split))]
    return EvalSplits(dataset, test, queried_val, distractors, kinds)


def choose_threshold(config: ProjectConfig, editor: SeracEditor, val: Sequence[EditRecord],
                     scorer: Scorer | None = None) -> ThresholdChoice | None:
    """Tune the scope threshold on validation edits at ``evaluation.tune_k`` (None: keep the configured one),
    on groups holding up to ``evaluation.max_queries_per_k`` in-scope queries (at least one group)."""
    ec = config.evaluation
    if ec.tune_k is None or not val:
        return None
    k = ec.tune_k if ec.tune_k == "all" else min(int(ec.tune_k), len(val))
    # tuning groups are bounded by the query budget alone (max_groups_per_k bounds the test groups)
    options = ProtocolOptions.of(ec, max_groups=None)
    return tune_threshold(editor, val, k, ec.threshold_candidates, options, lam=ec.threshold_lambda, scorer=scorer,
                          task=val[0].task if val else None)


def choose_schedule(config: ProjectConfig, editor: SeracEditor, val: Sequence[EditRecord],
                    distractors: Sequence[EditRecord], scorer: Scorer | None = None) -> tuple[ThresholdChoice, ...]:
    """One threshold per ``evaluation.tune_ks`` size on the validation edits of every evaluated dataset
    (memories above their number filled with ``distractors``); sizes that cannot be filled are skipped."""
    ec = config.evaluation
    options = ProtocolOptions.of(ec, max_groups=None)
    base_answers = BaseAnswers(editor.base, ec.batch_size)
    choices = []
    n = len(distinct_records(val))
    for k in sorted(set(ec.tune_ks)):
        if k > n + len(distractors):
            log.warning("threshold tuning at k=%d skipped: %d validation edits and %d distractors", k, n,
                        len(distractors))
            continue
        choices.append(tune_threshold(editor, val, k, ec.threshold_candidates, options, lam=ec.threshold_lambda,
                                      scorer=scorer, task=val[0].task, base_answers=base_answers,
                                      distractors=distractors))
    return tuple(choices)


def run_evaluation(config: ProjectConfig, work_dir: str | Path, out_dir: str | Path,
                   console: Console | None = None) -> EvaluationRun:
    """Evaluate the components trained in ``work_dir`` on the test split of every evaluated dataset
    (``evaluation.datasets``, default: the training mixture's) with one editor; write reports to ``out_dir``.

    The threshold is tuned on the validation edits first: per memory size (``evaluation.tune_ks``)
    on the validation edits of the training datasets together (a dataset evaluated but not trained
    on stays unseen), else once at ``tune_k`` on the primary dataset's. ES and DD are each task's (:mod:`serac.tasks.registry`), so are the FT baseline's
    edit pairs. ``out_dir`` gets the primary dataset's files (``metrics.json`` and the rest, as the
    gate and DVC read them), ``summary.md`` with every dataset's table and ``<dataset>/`` per dataset.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    tc, ec = config.training, config.evaluation
    names = list(dict.fromkeys([tc.dataset, *(ec.datasets or tc.datasets())]))
    splits = {name: load_eval_splits(config, name) for name in names}
    ctx = TaskContext(config=config, work_dir=Path(work_dir))
    primary = splits[tc.dataset]
    by_dataset: dict[str, list[MethodResult]] = {}
    with tempfile.TemporaryDirectory(prefix="serac-eval-") as tmp:
        editor = assemble_editor(config, work_dir, EditMemory.open(Path(tmp) / "memory", config.memory))
        editor.base = cached_base_model(editor.base, ec.base_cache_dir)  # frozen + greedy: answer each query once
        choices: tuple[ThresholdChoice, ...] = ()
        if ec.tune_ks:  # on the training datasets' validation edits: a held-out dataset stays unseen
            tuned = [s for name, s in splits.items() if name in tc.datasets()]
            val = [r for s in tuned for r in s.val]
            val_ids = {r.edit_id for r in val}
            train_distractors = [r for s in tuned for r in s.distractors if r.edit_id not in val_ids]
            choices = choose_schedule(config, editor, val, train_distractors, spec_of(primary.test).scorer(ctx))
        choice = choices[-1] if choices else choose_threshold(config, editor, primary.val,
                                                               spec_of(primary.test).scorer(ctx))
        threshold = choice.threshold if choice is not None else config.editor.threshold
        schedule = tuple((c.k, c.threshold) for c in choices)
        editor.config = replace(editor.config, threshold=threshold, threshold_by_size=schedule)
        variants = load_variants(config, work_dir, editor.base)
        for name, part in splits.items():
            spec = spec_of(part.test)
            by_dataset[name] = evaluate_all(
                editor, part.test, ec, work_dir=Path(tmp) / "groups", scorer=spec.scorer(ctx),
                ft_pairs=lambda record, spec=spec: spec.ft_pairs(record, ctx),
                distractors=part.distractors, locality_kinds=part.kinds, default_kind=spec.locality,
                variants=variants,
            )
        portability = {name: evaluate_portability(
                           all_methods(editor, ec, ft_pairs=lambda record, spec=spec_of(splits[name].test):
                                       spec.ft_pairs(record, ctx), variants=variants),
                           pairs, work_dir=Path(tmp) / "portability", batch_size=ec.batch_size)
                       for name, pairs in portability_pairs(config, splits).items()}
    results = by_dataset[tc.dataset]
    files = _write_dataset_files(results, out_dir)
    for name, res in by_dataset.items():
        for key, path in _write_dataset_files(res, out_dir / name).items():
            files[f"{name}/{key}"] = path
    for name, rows in portability.items():
        write_json(out_dir / name / PORTABILITY_FILE, [r.as_dict() for r in rows])
        files[f"{name}/portability"] = out_dir / name / PORTABILITY_FILE
    write_json(out_dir / THRESHOLD_FILE, {
        "threshold": threshold,
        "tuned_at_k": choice.k if choice else None,
        "by_size": [list(kt) for kt in schedule],
        "candidates": list(choice.table) if choice else [],
        "tables": {str(c.k): list(c.table) for c in choices},
    })
    files["threshold"] = out_dir / THRESHOLD_FILE
    how = (", ".join(f"{t:.3f}@{k}" for k, t in schedule) if schedule else f"{threshold:.2f}")
    tables = [results_table(res, title=f"{name} test: SERAC vs baselines (threshold {how})")
              for name, res in by_dataset.items()]
    tables += [portability_table(rows, title=f"{name} test: portability (one-hop questions, contains-match)")
               for name, rows in portability.items()]
    recorder = Console(record=True, width=170)
    for table in tables:
        recorder.print(table)
    write_bytes(out_dir / "summary.md", ("```\n" + recorder.export_text() + "```\n").encode("utf-8"))
    files["summary"] = out_dir / "summary.md"
    for table in tables:
        (console or Console(width=170)).print(table)
    return EvaluationRun(results, threshold, choice, time.monotonic() - started, files, by_dataset, schedule,
                         choices, portability)


def portability_pairs(config: ProjectConfig, splits: dict[str, EvalSplits]
                      ) -> dict[str, list[tuple[EditRecord, PortabilityProbe]]]:
    """Per evaluated dataset named in ``evaluation.portability``: its test edits that have a probe."""
    out = {}
    for name, rel in (config.evaluation.portability or {}).items():
        if name in splits:
            pairs = probed_records(splits[name].test, read_portability(Path(config.data.raw_root) / rel))
            if pairs:
                out[name] = pairs
            else:
                log.warning("portability: no test edit of %s has a probe in %s", name, rel)
    return out


def portability_table(rows: Sequence[PortabilityResult], title: str) -> Table:
    table = Table(title=title)
    for column in ("method", "probes", "accuracy", "routed"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for r in rows:
        table.add_row(r.method, str(r.n), "skipped" if r.skipped else f"{r.accuracy:.3f}",
                      "-" if r.routed is None else f"{r.routed:.3f}")
    return table


def _write_dataset_files(results: Sequence[MethodResult], out_dir: Path) -> dict[str, Path]:
    files = {
        "metrics": write_metrics_json(results, out_dir / "metrics.json"),
        "rows": write_metrics_rows(results, out_dir / "es_dd_vs_k.json"),
        "plot": plot_es_dd_vs_k(results, out_dir / "es_dd_vs_k.png"),
    }
    serac = next((r for r in results if r.method == "serac"), None)
    largest = [m for m in serac.per_k if m.scores_in or m.scores_out] if serac else []
    if largest:
        files["scores"] = plot_result_scores(largest[-1], out_dir / "scope_scores.png", method="serac")
    return files


def read_threshold_schedule(out_dir: str | Path) -> tuple[tuple[int, float], ...]:
    """The per-memory-size thresholds chosen by the evaluate stage (empty when there are none)."""
    path = Path(out_dir) / THRESHOLD_FILE
    if not path.is_file():
        return ()
    return tuple((int(k), float(t)) for k, t in json.loads(path.read_text()).get("by_size", []))


def read_threshold(out_dir: str | Path, default: float) -> float:
    """The threshold chosen by the evaluate stage, or ``default`` when there is none."""
    path = Path(out_dir) / THRESHOLD_FILE
    return float(json.loads(path.read_text())["threshold"]) if path.is_file() else default


__all__ = ["EvalSplits", "EvaluationRun", "choose_schedule", "choose_threshold", "load_eval_splits", "read_threshold",
           "read_threshold_schedule", "run_evaluation", "portability_pairs"]
