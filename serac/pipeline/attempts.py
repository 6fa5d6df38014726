"""Attempts of one Prefect flow run: a bound on reruns after lost workers, and MLflow runs they left open.

A deployment run whose worker dies is rescheduled by the server (``deploy/prefect-automations.yaml``)
and starts again from the top: :func:`check_attempts` ends it ``Failed`` once it has been started
more than ``max_attempts`` times, and :func:`end_interrupted_runs` marks the MLflow runs an earlier
attempt left ``RUNNING`` as ``KILLED`` (their per-step metrics stay; no model was registered from them,
since registration comes after evaluation in the same attempt).
"""

from __future__ import annotations

FLOW_RUN_TAG = "prefect.flow_run_id"


class AttemptsExhausted(RuntimeError):
    """The flow run was started more often than allowed (it keeps losing its worker)."""


def check_attempts(run_count: int, max_attempts: int) -> None:
    """Raise when this is attempt ``run_count`` > ``max_attempts`` of the same flow run."""
    if max_attempts >= 1 and run_count > max_attempts:
        raise AttemptsExhausted(
            f"attempt {run_count} of this flow run, at most {max_attempts} allowed: it keeps losing its worker "
            "(out of memory? preempted machine?); giving up. Start a new run once the cause is fixed."
        )


def end_interrupted_runs(flow_run_id: str, experiment_ids: list[str] | None = None) -> list[str]:
    """Mark ``RUNNING`` MLflow runs tagged with ``flow_run_id`` as ``KILLED``; their ids.

    Call before an attempt starts its own run. Needs MLflow configured (``configure_mlflow``).
    """
    import mlflow

    client = mlflow.MlflowClient()
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    stale = client.search_runs(
        experiment_ids, filter_string=f"tags.`{FLOW_RUN_TAG}` = '{flow_run_id}' and attributes.status = 'RUNNING'"
    )
    for run in stale:
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in stale]
