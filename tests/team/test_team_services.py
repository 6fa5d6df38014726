"""Team mode end to end: PostgreSQL, MLflow server on it, Prefect server, process worker (all on 127.0.0.1).

One session brings the stack up with the same code as ``make team-up`` and always takes it down.
A deployment run goes through the server's API to the worker and completes after a task retry;
the retrain deployment (tiny models) loses its worker mid-training, is rescheduled by the server's
heartbeat automation, resumes from its checkpoint, logs and registers to MLflow on PostgreSQL, and
the champion is read back through MLflow's REST API.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import HERE
from team_support import (
    flow_run,
    run_deployment,
    save_tiny_models,
    state_history,
    task_runs,
    wait_final,
    write_retrain_setup,
)

from serac.team.postgres import find_bin_dir
from serac.team.stack import (
    Team,
    TeamConfig,
    crash_worker,
    deploy_from_source,
    down,
    replace_worker,
    up,
)

HEARTBEAT_ENV = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
ZOMBIE_WITHIN_S = 40  # heartbeats every 30 s: no heartbeat for 40 s means the worker is gone


@pytest.fixture(scope="session")
def team():
    in_ci = bool(os.environ.get("CI"))
    if find_bin_dir() is None and not in_ci:
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql); CI installs them")
    # not under pytest's 0700 tmp root: PostgreSQL runs as the unprivileged 'postgres' user when we are root
    state = Path(tempfile.mkdtemp(prefix="serac-team-"))
    os.chmod(state, 0o755)
    cfg = TeamConfig(state_dir=state, prefect_ui=False, prefect_db="postgres", worker_query_seconds=2,
                     zombie_within_s=ZOMBIE_WITHIN_S, install_postgres=in_ci, startup_timeout_s=240,
                     extra_env={"OMP_NUM_THREADS": "1"})
    started = up(cfg)
    try:
        yield started
    finally:
        down(state, grace=8)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def prefect_api(team: Team):
    with httpx.Client(base_url=team.prefect_api_url, timeout=30) as client:
        yield client


def worker_log(team: Team) -> str:
    return Path(team.services["serac-worker"].log).read_text(errors="replace")[-4000:]


def test_stack_is_wired_up(team: Team, prefect_api):
    """Both deployments of prefect.yaml with their cron schedules on the process pool; the automation."""
    pool = prefect_api.get(f"/work_pools/{team.config.pool}").raise_for_status().json()
    assert pool["type"] == "process"
    crons = {}
    for name in ("nightly-ingest/nightly", "retrain/retrain"):
        deployment = prefect_api.get(f"/deployments/name/{name}").raise_for_status().json()
        assert deployment["work_pool_name"] == team.config.pool
        crons[name] = [s["schedule"]["cron"] for s in deployment["schedules"]]
    assert crons == {"nightly-ingest/nightly": ["0 2 * * *"], "retrain/retrain": ["0 4 * * 0"]}
    automations = prefect_api.post("/automations/filter", json={}).raise_for_status().json()
    assert [a["name"] for a in automations] == ["serac-reschedule-runs-without-heartbeat"]
    assert all(url.startswith("http://127.0.0.1:") for url in team.env().values())
    assert httpx.get(f"{team.mlflow_tracking_uri}/health").status_code == 200


def test_deployment_run_completes_on_the_worker_after_a_task_retry(team: Team, prefect_api, tmp_path):
    deploy_from_source(team, HERE, "probe_flow.py:probe", "probe", tags=["serac", "test"], env=HEARTBEAT_ENV)
    out = tmp_path / "probe.json"
    run_id = run_deployment(prefect_api, "team-probe/probe", {"out": str(out)})
    run = wait_final(prefect_api, run_id, timeout=120)
    assert run["state"]["type"] == "COMPLETED", (run["state"], worker_log(team))
    seen = json.loads(out.read_text())
    assert seen["attempts"] == 2, "the task failed once and its retry succeeded"
    assert seen["tracking_uri"] == team.mlflow_tracking_uri, "flow runs inherit the team URIs from the worker"
    flaky = [t for t in task_runs(prefect_api, run_id) if t["task_key"].startswith("flaky")]
    assert len(flaky) == 1 and flaky[0]["run_count"] == 2 and flaky[0]["state"]["type"] == "COMPLETED"


def mlflow_get(team: Team, path: str, **params) -> dict:
    response = httpx.get(f"{team.mlflow_tracking_uri}/api/2.0/mlflow/{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def test_worker_lost_mid_training_is_rescheduled_resumes_and_registers(team: Team, prefect_api, tmp_path):
    from serac.editor import SeracEditor

    params = write_retrain_setup(tmp_path, save_tiny_models(tmp_path), counterfactual_steps=60, checkpoint_every=10)
    checkpoint = tmp_path / "work" / "checkpoints" / "counterfactual" / "checkpoint" / "trainer.json"
    run_id = run_deployment(prefect_api, "retrain/retrain", {
        "params_path": str(params), "work_dir": str(tmp_path / "work"), "reports_dir": str(tmp_path / "reports"),
        "push": False,
    })
    # the worker (and the flow-run process under it) dies once the counterfactual model has a checkpoint
    deadline = time.monotonic() + 180
    while not checkpoint.exists():
        run = flow_run(prefect_api, run_id)
        assert run["state"]["type"] not in ("COMPLETED", "FAILED", "CRASHED"), (run["state"], worker_log(team))
        assert time.monotonic() < deadline, f"no checkpoint after 180 s: {worker_log(team)}"
        time.sleep(0.2)
    lost = team.services["serac-worker"]
    crash_worker(team, lost)
    assert flow_run(prefect_api, run_id)["state"]["type"] == "RUNNING", "the server has not noticed yet"
    assert not (tmp_path / "editor").exists(), "nothing packaged or registered by the lost attempt"
    new_worker = replace_worker(team, lost)
    team.services["serac-worker"] = new_worker

    run = wait_final(prefect_api, run_id, timeout=300)
    assert run["state"]["type"] == "COMPLETED", (run["state"], worker_log(team))
    assert run["run_count"] == 2
    names = [s["name"] for s in state_history(prefect_api, run_id)]
    assert "AwaitingRetry" in names and names.count("Running") == 2, names

    # MLflow on PostgreSQL, through its REST API only
    champion = mlflow_get(team, "registered-models/alias", name="serac-editor", alias="champion")["model_version"]
    registered = mlflow_get(team, "model-versions/search", filter="name='serac-editor'")["model_versions"]
    assert [v["version"] for v in registered] == [champion["version"]] == ["1"], "one version, from the finished attempt"
    run_info = mlflow_get(team, "runs/get", run_id=champion["run_id"])["run"]
    metrics = {m["key"]: m["value"] for m in run_info["data"]["metrics"]}
    assert {"serac.k4.es", "serac.k4.dd", "scope.threshold"} <= set(metrics), sorted(metrics)
    assert run_info["info"]["status"] == "FINISHED"
    tags = {t["key"]: t["value"] for t in run_info["data"]["tags"]}
    assert tags["prefect.flow_run_id"] == run_id
    history = mlflow_get(team, "metrics/get-history", run_id=champion["run_id"],
                         metric_key="counterfactual/train/loss")["metrics"]
    steps = sorted(m["step"] for m in history)
    # resumed, not restarted: from a checkpoint (or, on a fast machine that finished training before
    # the kill, the saved component is reused and this attempt trains nothing)
    assert not steps or (steps[0] > 1 and steps[-1] == 60), f"attempt 2 logged steps {steps[:3]}...{steps[-1:]}"

    search = httpx.post(f"{team.mlflow_tracking_uri}/api/2.0/mlflow/runs/search", timeout=30, json={
        "experiment_ids": [run_info["info"]["experiment_id"]], "filter": f"tags.`prefect.flow_run_id` = '{run_id}'"})
    attempts = search.raise_for_status().json()["runs"]
    assert sorted(r["info"]["status"] for r in attempts) == ["FINISHED", "KILLED"], "the lost attempt is closed"
    artifact_root = Path(team.config.artifact_root)
    assert any(artifact_root.rglob("MLmodel")), "the model's files went to the shared artifact store"
    assert SeracEditor.load(tmp_path / "editor") is not None  # the packaged editor is complete
