"""Team-mode tests (marker ``team``): torchrun on 2 processes, a real Prefect server with a process
worker, MLflow on PostgreSQL. Services listen on 127.0.0.1 only, start once per session and are
always stopped. Outside CI a missing PostgreSQL skips the service tests; in CI (``CI`` set) it fails."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
for path in (HERE, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.team)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a spawned process: offline, one thread, no inherited tracking/Prefect URLs."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", DO_NOT_TRACK="true",
               MLFLOW_DISABLE_TELEMETRY="true", DVC_NO_ANALYTICS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.update(extra)
    return env
