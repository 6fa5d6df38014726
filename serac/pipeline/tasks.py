"""One editor per task: train (task-aware), evaluate and report each task selected in ``tasks.selected``.

Per task, the configuration is ``params.yaml`` + the task's overlay (``tasks.overlays``), which
names its dataset, model kinds, work directory and reports directory. The steps:

1. generated tasks (QA-hard, fc) get their prepared splits from ``serac generate`` and are
   validated by the task's GX suite (``serac validate``) before training;
2. :func:`serac.training.editor.train_components` (the training ``serac train`` runs too) trains,
   resumably in ``work_dir``, what the task's :class:`~serac.tasks.spec.TaskSpec` asks for: its
   judge (ConvSent's sentiment classifier), the base model on the task's pre-edit world, the
   scope classifier and the counterfactual model on the task's examples;
3. :func:`serac.evaluation.stage.run_evaluation` with the task's scorer: SERAC vs unedited /
   LU / FT for every k, metrics.json, summary.md, es_dd_vs_k.png.

Why one editor per task rather than one multi-task editor: the tasks need different model
kinds (fc's counterfactual and base models are classifiers, the others generate), different
base models (a claim classifier, a QA model, a chatbot) and their own scope thresholds, and
small per-task models train in minutes on CPU; a shared scope classifier would be possible
but the routing threshold tuned for one task's negatives is wrong for another's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from serac.config import ConfigError, ProjectConfig, load_config
from serac.io import write_json
from serac.tasks import task_spec
from serac.training.editor import EditorTrainingReport, load_training_data, train_components

TRAINING_REPORT = "task_training.json"
"""Per component: seconds and steps of the call that trained it (kept across reruns that reuse it)."""


def _merge_saved(report: EditorTrainingReport, path: Path) -> EditorTrainingReport:
    """Add the saved seconds/steps of components reused in this call; save the union."""
    if path.is_file():
        saved = json.loads(path.read_text())
        report.seconds = {**saved.get("seconds", {}), **report.seconds}
        report.steps = {**saved.get("steps", {}), **report.steps}
    write_json(path, {"task": report.task, "seconds": report.seconds, "steps": report.steps,
                      "judge_heldout_accuracy": report.judge_accuracy})
    return report


# ------------------------------------------------------------------ one task end to end


@dataclass
class TaskRun:
    task: str
    work_dir: Path
    reports_dir: Path
    training: EditorTrainingReport
    threshold: float
    seconds: float


def task_config(params: str | Path, task: str, extra_overlays: Sequence[str | Path] = ()) -> ProjectConfig:
    """``params`` + the task's overlay (``tasks.overlays[task]``, relative to ``params``' directory);
    the dataset must be the task's own where its :class:`~serac.tasks.spec.TaskSpec` names one."""
    try:
        spec = task_spec(task)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    base = load_config(params, *extra_overlays)
    overlay = base.tasks.overlays.get(task)
    cfg = load_config(params, *([Path(params).parent / overlay] if overlay else []), *extra_overlays)
    if spec.dataset is not None and cfg.training.dataset != spec.dataset:
        raise ConfigError(f"task {task!r}: its overlay trains on dataset {cfg.training.dataset!r}")
    return cfg


def prepare_task_data(config: ProjectConfig, task: str) -> dict[str, int]:
    """Generate (QA-hard, fc) and validate the task's splits when the validated splits are missing.

    Returns the validated rows per split written by this call (empty when all were there).
    """
    from serac.data.generate import generate_dataset
    from serac.data.generators import GENERATORS
    from serac.data.validation import validate_file

    tc, gen = config.training, config.tasks.generate
    prepared = Path(config.data.prepared_dir) / tc.dataset
    if task in GENERATORS and not all((prepared / f"{s}.parquet").is_file() for s in ("train", "val", "test")):
        generate_dataset(task, gen.sources, config.data.prepared_dir, neighbours=gen.neighbours,
                         max_source_edits=dict(gen.max_source_edits))
    written: dict[str, int] = {}
    if Path(tc.data_dir).resolve() == Path(config.data.prepared_dir).resolve():
        return written
    for split in ("train", "val", "test"):
        out = Path(tc.data_dir) / tc.dataset / split
        if not (out / "passed.parquet").is_file():
            report = validate_file(prepared / f"{split}.parquet", out, config.validation)
            written[split] = len(report.passed)
    return written


def run_task(params: str | Path, task: str, *, work_root: str | Path = "artifacts",
             reports_root: str | Path = "reports", extra_overlays: Sequence[str | Path] = ()) -> TaskRun:
    """Prepare, train and evaluate one task's editor: ``<work_root>/<task>/work``, ``<reports_root>/<task>/``."""
    from serac.pipeline.retrain import evaluate, stage_run
    from serac.registry.tracking import MlflowHook

    began = time.monotonic()
    cfg = task_config(params, task, extra_overlays)
    work, reports = Path(work_root) / task / "work", Path(reports_root) / task
    prepare_task_data(cfg, task)
    with stage_run(cfg, f"task-{task}") as run_id:
        hooks = [MlflowHook(run_id=run_id)] if run_id else []
        training = _merge_saved(train_components(cfg, load_training_data(cfg), work, hooks), work / TRAINING_REPORT)
        evaluation = evaluate(cfg, work, reports, run_id=run_id)
        if run_id and training.judge_accuracy is not None:
            import mlflow

            mlflow.MlflowClient().log_metric(run_id, "judge.heldout_accuracy", training.judge_accuracy)
    write_json(reports / "training.json", {"task": task, "dataset": cfg.training.dataset,
                                           "train_edits": cfg.training.max_train_edits,
                                           "seconds": training.seconds, "steps": training.steps,
                                           "judge_heldout_accuracy": training.judge_accuracy})
    return TaskRun(task, work, reports, training, evaluation.threshold, time.monotonic() - began)
