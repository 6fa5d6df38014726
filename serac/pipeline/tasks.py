"""One editor per task: train (task-aware), evaluate and report each task selected in ``tasks.selected``.

Per task, the configuration is ``params.yaml`` + the task's overlay (``tasks.overlays``), which
names its dataset, model kinds, work directory and reports directory. The steps:

1. generated tasks (QA-hard, fc) get their prepared splits from ``serac generate`` and are
   validated by the task's GX suite (``serac validate``) before training;
2. :func:`train_task_components` trains, resumably in ``work_dir``: the base model on the
   task's pre-edit world (:mod:`serac.evaluation.tasks`), the scope classifier
   (:func:`serac.training.editor.train_scope`), the counterfactual model on the task's
   examples, and for ConvSent the sentiment judge;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from serac.config import ProjectConfig
from serac.data.schema import EditRecord
from serac.evaluation.tasks import JUDGE_DIR, TaskContext, spec_of
from serac.io import write_json
from serac.models.device import resolve_device
from serac.training.editor import (
    TrainingData,
    load_training_data,
    train_base,
    train_counterfactual_model,
    train_scope,
)
from serac.training.loop import TrainHook, TrainResult

JUDGE_REPORT = "judge.json"
TRAINING_REPORT = "task_training.json"
"""Per component: seconds and steps of the call that trained it (kept across reruns that reuse it)."""


@dataclass
class TaskTrainingReport:
    task: str
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per component trained in this call (reused components are absent)."""
    steps: dict[str, int] = field(default_factory=dict)
    judge_accuracy: float | None = None


def train_task_base(config: ProjectConfig, world: Sequence[EditRecord], work_dir: Path, ctx: TaskContext,
                    hooks: Sequence[TrainHook] = ()) -> TrainResult | None:
    """The offline default base model on the task's pre-edit world (``serac.training.editor.train_base``)."""
    return train_base(config, world, work_dir, hooks, ctx=ctx)


def train_task_counterfactual(config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord],
                              work_dir: Path, ctx: TaskContext, hooks: Sequence[TrainHook] = ()) -> TrainResult | None:
    """The counterfactual model on the task's examples (``serac.training.editor.train_counterfactual_model``)."""
    return train_counterfactual_model(config, train, val, work_dir, hooks, ctx=ctx)[1]


def train_convsent_judge(config: ProjectConfig, data: TrainingData, work_dir: Path, ctx: TaskContext
                         ) -> tuple[TrainResult | None, float]:
    """The sentiment judge on the train entities' responses; its accuracy on the test entities' responses.

    The accuracy is written to ``work_dir/judge.json`` (and read from there on reuse).
    """
    from serac.data.prepare import read_split
    from serac.evaluation.judge import SentimentJudge, judge_pairs, train_judge

    tc = config.training
    train_entities = sorted({r.subject for r in read_split(tc.data_dir, tc.dataset, "train") if r.subject})
    test_entities = sorted({r.subject for r in read_split(tc.data_dir, tc.dataset, "test") if r.subject})
    device = resolve_device(config.editor.device)
    result = train_judge(config.tasks.judge, judge_pairs(ctx.convsent_responses, train_entities),
                         work_dir / JUDGE_DIR, work_dir / "checkpoints" / JUDGE_DIR, device=device)
    report_path = work_dir / JUDGE_REPORT
    if result is None and report_path.is_file():
        return None, float(json.loads(report_path.read_text())["heldout_accuracy"])
    heldout = judge_pairs(ctx.convsent_responses, test_entities)
    accuracy = SentimentJudge.load(work_dir / JUDGE_DIR, device).accuracy(heldout)
    write_json(report_path, {"heldout_accuracy": accuracy, "heldout_sentences": len(heldout),
                             "heldout_entities": len(test_entities), "train_entities": len(train_entities)})
    return result, accuracy


def train_task_components(config: ProjectConfig, work_dir: str | Path,
                          hooks: Sequence[TrainHook] = ()) -> TaskTrainingReport:
    """Train (or reuse / resume) every component of the configured task's editor in ``work_dir``."""
    work_dir = Path(work_dir)
    data = load_training_data(config)
    task = spec_of(data.train).name
    ctx = TaskContext(config=config, work_dir=work_dir)
    report = TaskTrainingReport(task)

    def timed(name: str, fn) -> None:
        began = time.monotonic()
        result = fn()
        if result is not None:
            report.seconds[name] = round(time.monotonic() - began, 1)
            report.steps[name] = result.steps

    if task == "convsent":
        began = time.monotonic()
        result, report.judge_accuracy = train_convsent_judge(config, data, work_dir, ctx)
        if result is not None:
            report.seconds["judge"], report.steps["judge"] = round(time.monotonic() - began, 1), result.steps
    timed("base", lambda: train_task_base(config, data.world, work_dir, ctx, hooks))
    began = time.monotonic()
    _, scope_results = train_scope(config, data.train, data.val, work_dir, hooks)
    done = [r for r in scope_results.values() if r is not None]
    if done:
        report.seconds["scope"] = round(time.monotonic() - began, 1)
        report.steps["scope"] = sum(r.steps for r in done)
    timed("counterfactual", lambda: train_task_counterfactual(config, data.train, data.val, work_dir, ctx, hooks))
    return _merge_saved(report, work_dir / TRAINING_REPORT)


def _merge_saved(report: TaskTrainingReport, path: Path) -> TaskTrainingReport:
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
    training: TaskTrainingReport
    threshold: float
    seconds: float


def task_config(params: str | Path, task: str, extra_overlays: Sequence[str | Path] = ()) -> ProjectConfig:
    """``params`` + the task's overlay (``tasks.overlays[task]``, relative to ``params``' directory)."""
    from serac.config import ConfigError, load_config

    base = load_config(params, *extra_overlays)
    overlay = base.tasks.overlays.get(task)
    cfg = load_config(params, *([Path(params).parent / overlay] if overlay else []), *extra_overlays)
    if cfg.training.dataset != task and task not in ("fact", "qa"):
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
        training = train_task_components(cfg, work, hooks)
        evaluation = evaluate(cfg, work, reports, run_id=run_id)
        if run_id and training.judge_accuracy is not None:
            import mlflow

            mlflow.MlflowClient().log_metric(run_id, "judge.heldout_accuracy", training.judge_accuracy)
    write_json(reports / "training.json", {"task": task, "dataset": cfg.training.dataset,
                                           "train_edits": cfg.training.max_train_edits,
                                           "seconds": training.seconds, "steps": training.steps,
                                           "judge_heldout_accuracy": training.judge_accuracy})
    return TaskRun(task, work, reports, training, evaluation.threshold, time.monotonic() - began)
