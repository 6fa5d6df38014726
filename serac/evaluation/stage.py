"""The evaluate stage: tune the scope threshold on validation edits, run SERAC and the
baselines on the test split for every memory size k, and write metrics, rows and plots.

Outputs in ``out_dir``: ``metrics.json`` (DVC metrics), ``es_dd_vs_k.json`` (DVC plots
rows), ``es_dd_vs_k.png``, ``scope_scores.png``, ``threshold.json`` (read by the package
stage) and ``summary.md``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from rich.console import Console

from serac.config import ProjectConfig
from serac.data.prepare import read_split
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.editor.workdir import assemble_editor
from serac.evaluation.baselines import evaluate_all
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
from serac.tasks import TaskContext, spec_of
from serac.tasks.scorers import Scorer

THRESHOLD_FILE = "threshold.json"


@dataclass
class EvaluationRun:
    results: list[MethodResult]
    threshold: float
    choice: ThresholdChoice | None
    seconds: float
    files: dict[str, Path]


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
    return tune_threshold(editor, val, k, ec.threshold_candidates, options, lam=ec.threshold_lambda, scorer=scorer)


def run_evaluation(config: ProjectConfig, work_dir: str | Path, out_dir: str | Path,
                   console: Console | None = None) -> EvaluationRun:
    """Evaluate the components trained in ``work_dir`` on the test split; write reports to ``out_dir``.

    ES and DD are the task's (:mod:`serac.tasks.registry`), so are the FT baseline's edit pairs.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    tc = config.training
    val = read_split(tc.data_dir, tc.dataset, "val")
    test = read_split(tc.data_dir, tc.dataset, "test")
    spec = spec_of(test)
    ctx = TaskContext(config=config, work_dir=Path(work_dir))
    scorer = spec.scorer(ctx)
    with tempfile.TemporaryDirectory(prefix="serac-eval-") as tmp:
        editor = assemble_editor(config, work_dir, EditMemory.open(Path(tmp) / "memory", config.memory))
        choice = choose_threshold(config, editor, val, scorer)
        threshold = choice.threshold if choice is not None else config.editor.threshold
        editor.config = replace(editor.config, threshold=threshold)
        results = evaluate_all(editor, test, config.evaluation, work_dir=Path(tmp) / "groups", scorer=scorer,
                               ft_pairs=lambda record: spec.ft_pairs(record, ctx))
    files = {
        "metrics": write_metrics_json(results, out_dir / "metrics.json"),
        "rows": write_metrics_rows(results, out_dir / "es_dd_vs_k.json"),
        "plot": plot_es_dd_vs_k(results, out_dir / "es_dd_vs_k.png"),
    }
    serac = next(r for r in results if r.method == "serac")
    largest = [m for m in serac.per_k if m.scores_in or m.scores_out]
    if largest:
        files["scores"] = plot_result_scores(largest[-1], out_dir / "scope_scores.png", method="serac")
    write_json(out_dir / THRESHOLD_FILE, {
        "threshold": threshold,
        "tuned_at_k": choice.k if choice else None,
        "candidates": list(choice.table) if choice else [],
    })
    files["threshold"] = out_dir / THRESHOLD_FILE
    table = results_table(results, title=f"{tc.dataset} test: SERAC vs baselines (threshold {threshold:.2f})")
    recorder = Console(record=True, width=140)
    recorder.print(table)
    write_bytes(out_dir / "summary.md", ("```\n" + recorder.export_text() + "```\n").encode("utf-8"))
    files["summary"] = out_dir / "summary.md"
    (console or Console()).print(table)
    return EvaluationRun(results, threshold, choice, time.monotonic() - started, files)


def read_threshold(out_dir: str | Path, default: float) -> float:
    """The threshold chosen by the evaluate stage, or ``default`` when there is none."""
    import json

    path = Path(out_dir) / THRESHOLD_FILE
    return float(json.loads(path.read_text())["threshold"]) if path.is_file() else default


__all__ = ["EvaluationRun", "choose_threshold", "read_threshold", "run_evaluation"]
