"""Team mode on one machine: PostgreSQL, an MLflow server on it, a Prefect server, a work pool,
the deployments of ``prefect.yaml``, the server-side automations and a process worker.

Everything listens on 127.0.0.1. The pipeline itself does not change: flow runs reach MLflow
through ``MLFLOW_TRACKING_URI`` and Prefect through ``PREFECT_API_URL``, which ``up`` writes
to ``<state_dir>/team.env`` (``source`` it) and passes to the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from serac.team import postgres
from serac.team.ports import LOOPBACK, free_port, http_ok, wait_until
from serac.team.private_files import write_private
from serac.team.processes import Service, kill_tree, load_services, save_services, spawn, stop

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = "team.env"
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DVC_NO_ANALYTICS": "1",
}


@dataclass(frozen=True)
class TeamConfig:
    """Where the services keep their state and how they are reached (ports 0: free ports)."""

    state_dir: Path = Path(".team")
    pg_data: Path | None = None
    """PostgreSQL data directory (default ``<state_dir>/postgres``); it persists between ``up``s."""
    artifact_root: str | None = None
    """MLflow's shared artifact store (``--artifacts-destination``): a path or ``s3://`` / ``gs://`` URL;
    default ``<state_dir>/mlflow-artifacts``."""
    pg_port: int = 0
    mlflow_port: int = 0
    prefect_port: int = 0
    pool: str = "serac-pool"
    """The work pool of the worker; prefect.yaml's deployments name ``serac-pool``."""
    project_dir: Path = REPO_ROOT
    """Where ``prefect.yaml`` is; ``prefect deploy`` records it as the runs' working directory."""
    automations_file: Path | None = REPO_ROOT / "deploy" / "prefect-automations.yaml"
    zombie_within_s: float | None = None
    """Override the automation's heartbeat window (tests: shorter)."""
    deploy: bool = True
    worker: bool = True
    worker_query_seconds: float = 10.0
    prefect_ui: bool = True
    prefect_db: str = "postgres"
    """``sqlite`` (in ``<state_dir>/prefect``) or ``postgres`` (a ``prefect`` database in the same cluster)."""
    install_postgres: bool = False
    """``apt-get install postgresql`` when its binaries are missing (root, Debian)."""
    startup_timeout_s: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)
    """More environment for the worker (and so its flow runs)."""

    def resolved(self) -> TeamConfig:
        state = self.state_dir.resolve()
        return replace(self, state_dir=state, pg_data=(self.pg_data or state / "postgres").resolve(),
                       artifact_root=self.artifact_root or str(state / "mlflow-artifacts"))


@dataclass(frozen=True)
class Team:
    """The running services and the two URIs the pipeline needs."""

    config: TeamConfig
    prefect_api_url: str
    mlflow_tracking_uri: str
    services: dict[str, Service]

    def env(self) -> dict[str, str]:
        return {"PREFECT_API_URL": self.prefect_api_url, "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri}


def _bin(name: str) -> str:
    """A console script of this environment (prefect, mlflow) next to the running interpreter."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else name


def base_env(cfg: TeamConfig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    env.update(QUIET_ENV)
    env["PREFECT_HOME"] = str(cfg.state_dir / "prefect")
    return env


def mlflow_server_command(cfg: TeamConfig, port: int) -> list[str]:
    """``mlflow server`` on 127.0.0.1:``port``; the backend store comes from :func:`mlflow_server_env`."""
    return [_bin("mlflow"), "server", "--artifacts-destination", str(cfg.artifact_root), "--host", LOOPBACK,
            "--port", str(port), "--workers", "1"]


def mlflow_server_env(cfg: TeamConfig, backend_store_uri: str) -> dict[str, str]:
    """The MLflow server's environment. The database URI (with its password) goes here, not on the
    command line that ``ps`` shows everyone: ``mlflow server`` reads ``--backend-store-uri`` from
    ``MLFLOW_BACKEND_STORE_URI`` (mlflow 3.17, ``mlflow/cli/__init__.py``)."""
    return {**base_env(cfg), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_BACKEND_STORE_URI": backend_store_uri}


def up(cfg: TeamConfig = TeamConfig()) -> Team:
    """Start (or reuse the data of) every service and wire them up; stops what it started on failure."""
    cfg = cfg.resolved()
    running = [s.name for s in load_services(cfg.state_dir) if s.alive()]
    if running:
        raise RuntimeError(f"team services already running from {cfg.state_dir}: {running} (stop them: make team-down)")
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    logs = cfg.state_dir / "logs"
    started: list[Service] = []
    try:
        bin_dir = postgres.ensure_binaries(cfg.install_postgres)
        pg_port = cfg.pg_port or free_port()
        cluster = postgres.start_postgres(bin_dir, cfg.pg_data, pg_port, logs, user=postgres.service_user(),
                                          timeout=cfg.startup_timeout_s)
        started.append(cluster.service)
        save_services(cfg.state_dir, started)
        postgres.create_database(cluster, "mlflow")

        prefect_port = cfg.prefect_port or free_port()
        prefect_url = f"http://{LOOPBACK}:{prefect_port}/api"
        prefect_env = {**base_env(cfg), "PREFECT_UI_ENABLED": str(cfg.prefect_ui).lower(),
                       "PREFECT_UI_API_URL": prefect_url}
        if cfg.prefect_db == "postgres":
            postgres.create_database(cluster, "prefect")
            prefect_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = cluster.uri("prefect", "postgresql+asyncpg")
        prefect = spawn("prefect-server", [_bin("prefect"), "server", "start", "--host", LOOPBACK,
                                           "--port", str(prefect_port)],
                        env=prefect_env, log_dir=logs, url=prefect_url, cwd=cfg.state_dir)
        started.append(prefect)
        save_services(cfg.state_dir, started)

        mlflow_port = cfg.mlflow_port or free_port()
        mlflow_url = f"http://{LOOPBACK}:{mlflow_port}"
        mlflow = spawn("mlflow-server", mlflow_server_command(cfg, mlflow_port),
                       env=mlflow_server_env(cfg, cluster.uri("mlflow", "postgresql+psycopg2")), log_dir=logs,
                       url=mlflow_url, cwd=cfg.state_dir)
        started.append(mlflow)
        save_services(cfg.state_dir, started)

        wait_until(lambda: http_ok(f"{mlflow_url}/health"), cfg.startup_timeout_s, "mlflow server",
                   alive=mlflow.alive)
        wait_until(lambda: http_ok(f"{prefect_url}/health"), cfg.startup_timeout_s, "prefect server",
                   alive=prefect.alive)
        team = Team(cfg, prefect_url, mlflow_url, {s.name: s for s in started})
        configure_prefect(team)
        if cfg.worker:
            started.append(start_worker(team))
            save_services(cfg.state_dir, started)
        team = replace(team, services={s.name: s for s in started})
        write_env_file(team)
        return team
    except BaseException:
        for service in reversed(started):
            stop(service)
        save_services(cfg.state_dir, [])
        raise


def prefect_cli(team: Team, *args: str, timeout: float = 300) -> str:
    """Run ``prefect <args>`` against the team server from the project directory; its output."""
    env = {**base_env(team.config), "PREFECT_API_URL": team.prefect_api_url}
    done = subprocess.run([_bin("prefect"), "--no-prompt", *args], cwd=team.config.project_dir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed ({done.returncode}): {done.stdout[-2000:]}"
                           f"{done.stderr[-2000:]}")
    return done.stdout


def configure_prefect(team: Team) -> None:
    """The process work pool, the deployments of prefect.yaml (cron schedules) and the automations."""
    cfg = team.config
    try:
        prefect_cli(team, "work-pool", "inspect", cfg.pool)
    except RuntimeError:
        prefect_cli(team, "work-pool", "create", cfg.pool, "--type", "process")
    if cfg.deploy:
        prefect_cli(team, "deploy", "--all")
    if cfg.automations_file is not None:
        create_automations(team, load_automations(cfg.automations_file, cfg.zombie_within_s))


def load_automations(path: Path, within_s: float | None = None) -> list[dict[str, Any]]:
    data = yaml.safe_load(Path(path).read_text())
    automations = data["automations"] if isinstance(data, dict) else data
    if within_s is not None:
        for automation in automations:
            if automation["trigger"].get("posture") == "Proactive":
                automation["trigger"]["within"] = within_s
    return automations


def create_automations(team: Team, automations: list[dict[str, Any]]) -> None:
    """Create each automation, replacing one of the same name (``up`` is repeatable)."""
    import httpx

    with httpx.Client(base_url=team.prefect_api_url, timeout=30) as client:
        existing = client.post("/automations/filter", json={}).raise_for_status().json()
        for automation in automations:
            for old in existing:
                if old["name"] == automation["name"]:
                    client.delete(f"/automations/{old['id']}").raise_for_status()
            client.post("/automations/", json=automation).raise_for_status()


def start_worker(team: Team, name: str = "serac-worker") -> Service:
    """A process worker on the team pool; its flow runs inherit the team URIs from its environment."""
    cfg = team.config
    env = {**base_env(cfg), **team.env(), "PREFECT_WORKER_QUERY_SECONDS": str(cfg.worker_query_seconds),
           **cfg.extra_env}
    log = cfg.state_dir / "logs" / f"{name}.log"
    offset = log.stat().st_size if log.exists() else 0  # a restarted worker appends to the same log
    worker = spawn(name, [_bin("prefect"), "worker", "start", "--pool", cfg.pool, "--type", "process",
                          "--name", name], env=env, log_dir=cfg.state_dir / "logs", cwd=cfg.project_dir)
    marker = f"Worker '{name}' started".encode()

    def started() -> bool:
        with open(worker.log, "rb") as fh:
            fh.seek(offset)
            return marker in fh.read()

    wait_until(started, cfg.startup_timeout_s, "prefect worker", alive=worker.alive)
    return worker


def write_env_file(team: Team) -> Path:
    path = team.config.state_dir / ENV_FILE
    lines = [f"export {k}={v}" for k, v in team.env().items()]
    # the tracking URI carries no password, but keep the file private anyway
    return write_private(path, "\n".join(["# source this file: the pipeline then logs to the team servers", *lines])
                         + "\n")


def down(state_dir: Path, grace: float = 15.0) -> list[str]:
    """Stop every service recorded in ``state_dir`` (workers first, PostgreSQL last); their names."""
    services = load_services(state_dir)
    stopped = []
    for service in reversed(services):
        stop(service, grace)
        stopped.append(service.name)
    save_services(state_dir, [])
    return stopped


def crash_worker(team: Team, service: Service) -> None:
    """SIGKILL a worker with its flow-run processes (tests: a machine that dies mid-run)."""
    kill_tree(service)
    services = [s for s in load_services(team.config.state_dir) if s.pid != service.pid]
    save_services(team.config.state_dir, services)


def replace_worker(team: Team, old: Service) -> Service:
    """Start a new worker in place of ``old`` (after a crash) and record it."""
    worker = start_worker(team, name=old.name)
    services = [s for s in load_services(team.config.state_dir) if s.pid != old.pid] + [worker]
    save_services(team.config.state_dir, services)
    return worker


def deploy_from_source(team: Team, source_dir: Path, entrypoint: str, name: str, tags: list[str],
                       env: dict[str, str] | None = None) -> str:
    """Deploy a flow from a local directory to the team pool (``flow.from_source(...).deploy``); its id."""
    code = (
        "import sys\nfrom prefect import flow\n"
        "d = flow.from_source(source=sys.argv[1], entrypoint=sys.argv[2]).deploy(\n"
        "    name=sys.argv[3], work_pool_name=sys.argv[4], tags=sys.argv[5].split(','),\n"
        "    job_variables={'env': dict(kv.split('=', 1) for kv in sys.argv[6:])}, print_next_steps=False)\n"
        "print(d)\n"
    )
    run_env = {**base_env(team.config), "PREFECT_API_URL": team.prefect_api_url}
    args = [str(source_dir), entrypoint, name, team.config.pool, ",".join(tags),
            *(f"{k}={v}" for k, v in (env or {}).items())]
    done = subprocess.run([sys.executable, "-c", code, *args], env=run_env, capture_output=True, text=True,
                          timeout=300, cwd=source_dir)
    if done.returncode != 0:
        raise RuntimeError(f"deploying {entrypoint} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]
