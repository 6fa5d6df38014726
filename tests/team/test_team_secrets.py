"""Team-mode secrets: files that hold them are private from the moment they exist, and no
password reaches a command line (``ps`` shows every user's command lines)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from serac.team import postgres, stack
from serac.team.processes import Service, save_services

PASSWORD = "pw-Zq81-not-on-any-command-line"


@pytest.fixture
def umask_022_and_no_chmod(monkeypatch):
    """The usual umask, and every later chmod dropped: what a file is at creation is what it stays."""
    old = os.umask(0o022)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_file_is_private_from_creation(tmp_path, umask_022_and_no_chmod):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    with os.fdopen(os.open(bin_dir / "initdb", os.O_CREAT | os.O_WRONLY, 0o755), "w") as fh:
        fh.write("#!/bin/sh\nexit 0\n")  # a stand-in initdb (created executable: chmod is patched out)
    password = postgres.init_cluster(bin_dir, tmp_path / "pg", user=None)
    secret = tmp_path / ".pg.password"
    assert secret.read_text().strip() == password
    assert mode(secret) == 0o600


def test_state_and_env_files_are_private_from_creation(tmp_path, umask_022_and_no_chmod):
    save_services(tmp_path, [Service("x", 1, "", "", ["x"])])
    assert mode(tmp_path / "services.json") == 0o600
    team = stack.Team(stack.TeamConfig(state_dir=tmp_path), "http://127.0.0.1:1/api", "http://127.0.0.1:2", {})
    assert mode(stack.write_env_file(team)) == 0o600


def test_no_password_on_any_spawned_command_line(tmp_path, monkeypatch):
    """``up`` with the services faked: the commands it spawns and records carry no password;
    MLflow gets its database URI through the environment (``MLFLOW_BACKEND_STORE_URI``)."""
    spawned: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_spawn(name, command, *, env, log_dir, url="", **kwargs):
        spawned.append((name, list(command), dict(env)))
        return Service(name, os.getpid(), url, str(log_dir / f"{name}.log"), list(command))

    cluster = postgres.PostgresCluster(tmp_path / "pg", 5999, PASSWORD, Service("postgres", os.getpid(), "", "",
                                                                                 ["postgres", "-D", "x"]))
    monkeypatch.setattr(postgres, "ensure_binaries", lambda install: tmp_path)
    monkeypatch.setattr(postgres, "start_postgres", lambda *args, **kwargs: cluster)
    monkeypatch.setattr(postgres, "create_database", lambda *args: None)
    monkeypatch.setattr(stack, "spawn", fake_spawn)
    monkeypatch.setattr(stack, "wait_until", lambda *args, **kwargs: None)
    monkeypatch.setattr(stack, "configure_prefect", lambda team: None)
    monkeypatch.setattr(stack, "load_services", lambda state_dir: [])
    team = stack.up(stack.TeamConfig(state_dir=tmp_path / "team", worker=False, deploy=False))

    names = [name for name, _, _ in spawned]
    assert names == ["prefect-server", "mlflow-server"]
    for name, command, _ in spawned:
        assert PASSWORD not in " ".join(command), f"{name}: password on the command line"
    _, mlflow_command, mlflow_env = spawned[1]
    assert "--backend-store-uri" not in mlflow_command
    assert mlflow_env["MLFLOW_BACKEND_STORE_URI"] == cluster.uri("mlflow", "postgresql+psycopg2")
    assert "MLFLOW_BACKEND_STORE_URI" not in spawned[0][2]  # the Prefect server does not get it
    recorded = (tmp_path / "team" / "services.json").read_text()
    assert PASSWORD not in recorded and PASSWORD not in json.dumps(team.env())
    assert PASSWORD not in (tmp_path / "team" / stack.ENV_FILE).read_text()
