"""Retraining flow: train -> evaluate -> package -> register + promotion gate -> dvc push.

Thin: each task calls one function of :mod:`serac.pipeline.retrain`. Training is
resumable (finished components are reused, an interrupted one continues from its
checkpoint), so a retried or re-run flow picks up where the last one stopped.
Everything is logged into one MLflow run whose id the tasks receive explicitly.

Locally (no server, a temporary Prefect API starts by itself)::

    python flows/retrain.py --params params.yaml [--overlay params.demo.yaml]

On a team server it runs as the ``retrain`` deployment of ``prefect.yaml`` on a
work pool (GPU workers where present: ``editor.device: auto`` picks CUDA).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from serac.config import ProjectConfig, RegistryConfig, load_config
from serac.pipeline import retrain as steps
from serac.pipeline.dvc import DvcError, find_repo_root, run_dvc

ARTIFACT_KEY = "retrain"
HOUR = 3600


@task(name="train-components", timeout_seconds=6 * HOUR)
def train_task(config: ProjectConfig, work_dir: str, run_id: str) -> dict[str, Any]:
    return steps.train_components(config, work_dir, run_id=run_id).summary()


@task(name="evaluate", timeout_seconds=2 * HOUR)
def evaluate_task(config: ProjectConfig, work_dir: str, reports_dir: str, run_id: str):
    return steps.evaluate(config, work_dir, reports_dir, run_id=run_id)


@task(name="package", timeout_seconds=HOUR)
def package_task(config: ProjectConfig, work_dir: str, reports_dir: str, editor_dir: str) -> str:
    return str(steps.package_editor(config, work_dir, reports_dir, editor_dir))


@task(name="register-and-promote", retries=2, retry_delay_seconds=10, timeout_seconds=HOUR)
def register_task(registry: RegistryConfig, editor_dir: str, evaluation, run_id: str, eval_set: str,
                  memory_root: str, tags: dict[str, str]) -> steps.PromotionOutcome:
    return steps.register_and_promote(registry, editor_dir, evaluation, run_id, eval_set=eval_set,
                                      memory_root=memory_root, tags=tags)


@task(name="dvc-push", retries=2, retry_delay_seconds=30, timeout_seconds=HOUR)
def dvc_push_task(repo_root: str) -> str:
    return run_dvc(["push"], cwd=repo_root)


def summary_markdown(training: dict[str, Any], evaluation, outcome: steps.PromotionOutcome, pushed: str) -> str:
    from serac.evaluation.report import metrics_dict

    lines = ["# serac retrain", "", "| component | status |", "|---|---|"]
    lines += [f"| {name} | {json.dumps(info)} |" for name, info in training.items()]
    lines += ["", f"Scope threshold (tuned on val): **{evaluation.threshold:.2f}**", "",
              "| method | k | ES | DD |", "|---|---|---|---|"]
    for method, per_k in metrics_dict(evaluation.results).items():
        for k, m in per_k.items():
            if isinstance(m, dict) and "es" in m:
                lines.append(f"| {method} | {k} | {m['es']:.3f} | {m.get('dd', float('nan')):.3f} |")
    verdict = "promoted to champion" if outcome.promoted else "not promoted"
    lines += ["", f"Model **{outcome.model_name}** version **{outcome.version}**: {verdict}. {outcome.reason}",
              "", f"DVC push: {pushed}"]
    return "\n".join(lines)


@flow(name="retrain")
def retrain(
    params_path: str = "params.yaml",
    overlays: tuple[str, ...] = (),
    work_dir: str = "artifacts/work",
    reports_dir: str = "reports",
    editor_dir: str | None = None,
    push: bool = True,
    max_attempts: int = 3,
    reason: str = "",
) -> steps.PromotionOutcome:
    """Train, evaluate, package, register and gate a new editor; push DVC-tracked outputs.

    ``reason``: why this run was started (the nightly ingest passes its retrain decision); a tag
    ``retrain.reason`` on the MLflow run. The registered version serves the live memory
    (``memory.root``, a snapshot logged with it) and says which (``memory.version``, ``memory.dvc_md5``).

    A run rescheduled after its worker died starts again here: finished components are reused,
    training resumes from its checkpoint; after ``max_attempts`` starts the run fails instead.
    """
    from prefect.runtime import flow_run

    from serac.pipeline.attempts import FLOW_RUN_TAG, check_attempts, end_interrupted_runs
    from serac.registry.tracking import configure_mlflow, log_params_flat, start_run

    logger = get_run_logger()
    check_attempts(flow_run.run_count, max_attempts)
    config = load_config(params_path, *overlays)
    editor_dir = editor_dir or config.editor.artifact_dir
    if flow_run.run_count > 1:
        killed = end_interrupted_runs(flow_run.id, [configure_mlflow(config.tracking)])
        logger.warning("attempt %d: resuming; marked the earlier attempt's MLflow runs %s KILLED",
                       flow_run.run_count, killed)
    lineage = steps.version_tags(config)
    tags = {**lineage, FLOW_RUN_TAG: flow_run.id or "local", **({"retrain.reason": reason} if reason else {})}
    with start_run(config.tracking, run_name="retrain", tags=tags) as run:
        run_id = run.info.run_id
        log_params_flat(config, run_id=run_id)
        training = train_task(config, work_dir, run_id)
        evaluation = evaluate_task(config, work_dir, reports_dir, run_id)
        package_task(config, work_dir, reports_dir, editor_dir)
        outcome = register_task(config.registry, editor_dir, evaluation, run_id, steps.eval_set_id(config),
                                str(config.memory.root), lineage)
    pushed = "skipped"
    repo = find_repo_root(Path(params_path).resolve().parent)
    if push and repo is not None:
        try:
            dvc_push_task(str(repo))
            pushed = "done"
        except DvcError as exc:  # the model is registered either way; a later run pushes again
            pushed = f"failed: {exc}"
            logger.warning("dvc push failed: %s", exc)
    create_markdown_artifact(key=ARTIFACT_KEY, markdown=summary_markdown(training, evaluation, outcome, pushed),
                             description="serac retrain: training, ES/DD per memory size, promotion decision")
    logger.info("model %s v%s: %s (%s)", outcome.model_name, outcome.version,
                "champion" if outcome.promoted else "challenger only", outcome.reason)
    return outcome


def deployments():
    """Deployment of this flow with its cron schedule, built without a server."""
    return [retrain.to_deployment(name="retrain", cron="0 4 * * 0", parameters={"params_path": "params.yaml"})]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--overlay", action="append", default=[])
    parser.add_argument("--no-push", action="store_true")
    args = parser.parse_args()
    retrain(params_path=args.params, overlays=tuple(args.overlay), push=not args.no_push)
