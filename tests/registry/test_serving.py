"""The registered champion serves its edits through MLflow's own scoring server.

The packaged editor carries an empty memory (what the retrain flow registers); edits then
arrive in the live memory (the nightly ingest). ``refresh_champion_memory`` registers the
champion's components with a snapshot of that memory, and ``mlflow models serve -m
models:/<name>@champion`` (a real subprocess) answers an edited query from the edit and an
unrelated one from the base model. ``SERAC_MEMORY_ROOT`` serves a live memory instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
from mlflow import MlflowClient
from registry_support import BASE_REFERENCE
from tiny import tiny_counterfactual

from serac.config import EditorConfig, MemoryConfig, RegistryConfig, ScopeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier
from serac.registry.promotion import promote
from serac.registry.pyfunc import ARTIFACT_SHA256_TAG, MEMORY_ROOT_ENV, log_editor_model
from serac.registry.refresh import REFRESH_OF_TAG, refresh_champion_memory
from serac.registry.tracking import start_run

HERE = Path(__file__).parent
REPO = HERE.parents[1]
PM = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")])
EDITED, UNRELATED = "Who is the UK's prime minister?", "What is 2+2?"
NAME = "serac-editor-served"
GATE = {"es": 0.9, "dd": 0.01, "eval_set": "sha256:tiny"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """(packaged editor with an empty memory, live memory root holding one edit)."""
    root = tmp_path_factory.mktemp("served")
    live = root / "memory"
    editor = SeracEditor(ScopeClassifier.from_config(ScopeConfig()), tiny_counterfactual(),
                         CallableBaseModel(BASE_REFERENCE), EditMemory.open(live, MemoryConfig(root=str(live))),
                         EditorConfig(device="cpu"))  # fmt: skip
    editor.save(root / "editor")  # as `serac package` does: the memory it holds is still empty
    editor.edit([PM])
    return root / "editor", live


@pytest.fixture(scope="module")
def champion(store, packaged):
    """v1 (empty memory) promoted, then refreshed with the live memory: v2, the champion."""
    directory, live = packaged
    with start_run(store, run_name="package"):
        first = log_editor_model(directory, NAME, input_example=None, tags={"data.dvc_md5": "abc.dir"})
    assert promote(MlflowClient(), NAME, first.version, GATE, RegistryConfig(model_name=NAME)).promote
    refreshed = refresh_champion_memory(RegistryConfig(model_name=NAME), store, live, memory_md5="feed.dir")
    return first, refreshed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_until_up(url: str, server: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"mlflow models serve not up after {timeout_s:.0f} s")


@pytest.mark.filterwarnings("ignore::UserWarning")  # "no input example": skipped on purpose
def test_the_champion_served_by_mlflow_answers_edited_queries_from_the_edit(store, champion, tmp_path):
    first, refreshed = champion
    assert str(refreshed.version) == "2"
    assert refreshed.tags["memory.edits"] == "1" and refreshed.tags["memory.dvc_md5"] == "feed.dir"
    assert refreshed.tags[REFRESH_OF_TAG] == "1" and refreshed.tags["promotion.decision"] == "memory refresh"
    assert {k: refreshed.tags[k] for k in GATE} == {k: str(v) for k, v in GATE.items()}  # the gate's inputs carried
    assert refreshed.tags["data.dvc_md5"] == "abc.dir" and first.tags["memory.edits"] == "0"

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri,
           "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    env.pop(MEMORY_ROOT_ENV, None)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}@champion", "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        out = post(f"http://127.0.0.1:{port}/invocations", {"inputs": {"query": [EDITED, UNRELATED]}})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    edited, unrelated = out["predictions"]
    assert edited["routed_to"] == "counterfactual" and edited["edit_id"] == PM.edit_id, (tmp_path / "serve.log")
    assert unrelated["routed_to"] == "base" and unrelated["answer"] == "base:" + UNRELATED


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_refreshing_the_same_memory_again_registers_nothing(store, champion, packaged):
    _, refreshed = champion
    same_md5 = refresh_champion_memory(RegistryConfig(model_name=NAME), store, packaged[1], memory_md5="feed.dir")
    same_bytes = refresh_champion_memory(RegistryConfig(model_name=NAME), store, packaged[1])  # no md5: compared
    assert str(same_md5.version) == str(same_bytes.version) == str(refreshed.version)
    assert same_bytes.tags[ARTIFACT_SHA256_TAG] == refreshed.tags[ARTIFACT_SHA256_TAG]
    assert len(MlflowClient().search_model_versions(f"name = '{NAME}'")) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_serac_memory_root_serves_a_live_memory_instead_of_the_snapshot(store, champion, packaged, monkeypatch):
    first, _ = champion
    monkeypatch.setenv(MEMORY_ROOT_ENV, str(packaged[1]))
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{first.version}")  # v1 holds an empty memory
    out = model.predict(pd.DataFrame({"query": [EDITED, UNRELATED]}))
    assert out["routed_to"].tolist() == ["counterfactual", "base"] and out["edit_id"][0] == PM.edit_id


def test_no_champion_means_nothing_to_refresh(store, packaged):
    assert refresh_champion_memory(RegistryConfig(model_name="serac-editor-none"), store, packaged[1]) is None
