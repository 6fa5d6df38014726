"""Retraining steps behind ``flows/retrain.py``: train, evaluate, package, register + promote, push.

Each step is a plain function so the Prefect flow stays thin and the steps are
testable alone. Training resumes from ``work_dir/checkpoints`` after a crash and
reuses finished components; every step logs into one MLflow run.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from serac.config import ProjectConfig, RegistryConfig
from serac.data.prepare import split_path
from serac.editor.guard import validation_canaries
from serac.evaluation.report import metrics_dict
from serac.evaluation.stage import EvaluationRun, read_threshold, read_threshold_schedule, run_evaluation
from serac.memory import EditMemory
from serac.training.editor import EditorTrainingReport, assemble_editor, load_training_data, train_editor


@dataclass
class PromotionOutcome:
    model_name: str
    version: str
    promoted: bool
    reason: str
    metrics: dict[str, Any]
    run_id: str | None = None
    """The MLflow run that trained, evaluated and registered this version."""


def train_components(config: ProjectConfig, work_dir: str | Path, run_id: str | None = None) -> EditorTrainingReport:
    """Train (or reuse / resume) base model, scope classifier and counterfactual model in ``work_dir``."""
    from serac.registry.tracking import MlflowHook

    data = load_training_data(config)
    hooks = [MlflowHook(run_id=run_id)] if run_id else []
    _, report = train_editor(config, data.train, data.val, work_dir, world=data.world, hooks=hooks)
    return report


def evaluate(config: ProjectConfig, work_dir: str | Path, reports_dir: str | Path,
             run_id: str | None = None) -> EvaluationRun:
    """The evaluate stage; with ``run_id``, metrics per memory size and the plots go to that MLflow run."""
    run = run_evaluation(config, work_dir, reports_dir)
    if run_id:
        from serac.registry.tracking import log_metrics_by_k, log_plot, sanitize_key

        log_metrics_by_k(metrics_dict(run.results), run_id=run_id)
        for name, results in run.by_dataset.items():
            if name != config.training.dataset:  # the primary dataset's metrics are the unprefixed ones
                log_metrics_by_k(metrics_dict(results), prefix=f"{name}/", run_id=run_id)
        for key, path in run.files.items():
            if key.rsplit("/", 1)[-1] in ("plot", "scores"):
                log_plot(path, artifact_dir="plots" if "/" not in key else f"plots/{key.split('/')[0]}",
                         run_id=run_id)
        import mlflow

        client = mlflow.MlflowClient()
        client.log_metric(run_id, "scope.threshold", run.threshold)
        for k, t in run.schedule:
            client.log_metric(run_id, "scope.threshold_by_size", t, step=k)
        for name, rows in run.portability.items():
            for row in rows:
                if not row.skipped:
                    client.log_metric(run_id, sanitize_key(f"{name}/portability/{row.method}"), row.accuracy)
    return run


def package_editor(config: ProjectConfig, work_dir: str | Path, reports_dir: str | Path, out_dir: str | Path) -> Path:
    """Package the trained components with the tuned threshold, an empty memory and the guard's canary set."""
    config = replace(config, editor=replace(config.editor,
                                            threshold=read_threshold(reports_dir, config.editor.threshold),
                                            threshold_by_size=read_threshold_schedule(reports_dir)))
    with tempfile.TemporaryDirectory(prefix="serac-package-") as tmp:
        editor = assemble_editor(config, work_dir, EditMemory.open(Path(tmp) / "memory", config.memory))
        editor.attach_canaries(validation_canaries(editor.scope, config.training.data_dir, config.training.dataset,
                                                   config.guard.canaries))
        return editor.save(out_dir)


def eval_set_id(config: ProjectConfig) -> str:
    """Fingerprint of the frozen evaluation set (test split file + protocol): the gate compares like with like."""
    from serac.registry.promotion import eval_set_fingerprint

    test = split_path(config.training.data_dir, config.training.dataset, "test")
    return eval_set_fingerprint([test], asdict(config.evaluation))


def register_and_promote(registry: RegistryConfig, editor_dir: str | Path, evaluation: EvaluationRun, run_id: str,
                         *, eval_set: str, memory_root: str | Path | None = None,
                         tags: Mapping[str, str] | None = None) -> PromotionOutcome:
    """Register the packaged editor, with a snapshot of the memory at ``memory_root`` (the one it will
    serve; the packaged memory when None), as a new model version and run the promotion gate on it.

    ``eval_set`` is :func:`eval_set_id` of the evaluation; ``tags`` (e.g. :func:`version_tags`) go on
    the version. A retry in the same run registers no second version (see ``log_editor_model``).
    """
    import mlflow

    from serac.registry.promotion import metrics_at_k, promote
    from serac.registry.pyfunc import log_editor_model

    memory = memory_root if memory_root is not None and Path(memory_root).exists() else None
    version = log_editor_model(editor_dir, registry.model_name, memory_root=memory, tags=tags)
    metrics = {**metrics_at_k(metrics_dict(evaluation.results), registry.primary_k), "eval_set": eval_set}
    decision = promote(mlflow.MlflowClient(), registry.model_name, version.version, metrics, registry, run_id=run_id)
    return PromotionOutcome(registry.model_name, str(version.version), decision.promote, decision.reason, metrics,
                            run_id)


@contextlib.contextmanager
def stage_run(config: ProjectConfig, stage: str, section: Any = None) -> Iterator[str | None]:
    """An MLflow run for one DVC stage command (``tracking.log_stages``), with its params and version
    tags; yields the run id, or None when stage logging is off."""
    if not config.tracking.log_stages:
        yield None
        return
    from serac.registry.tracking import log_params_flat, start_run

    with start_run(config.tracking, run_name=stage, tags={"stage": stage, **version_tags(config)}) as run:
        log_params_flat(section if section is not None else config, run_id=run.info.run_id)
        yield run.info.run_id


def version_tags(config: ProjectConfig) -> dict[str, str]:
    """Data, memory and code versions to tag a run with (DVC hashes where DVC tracks them)."""
    from serac.registry.tracking import dvc_hash, git_commit

    data_dir = f"{config.training.data_dir}/{config.training.dataset}"
    tags = {
        "data.dvc_md5": dvc_hash(f"{data_dir}/train") or dvc_hash(data_dir),
        "memory.dvc_md5": dvc_hash(config.memory.root),
        "git.commit": git_commit(),
        "dataset": config.training.dataset,
    }
    return {k: v for k, v in tags.items() if v}
