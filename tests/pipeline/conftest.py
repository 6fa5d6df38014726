"""Pipeline tests: a Prefect test harness (session, opt-in), a tiny editor saved once, params in tmp.

The harness starts a temporary Prefect API on SQLite once per session (5-20 s on a
loaded machine), with PREFECT_HOME (task result cache, local storage) in a tmp directory,
so nothing touches ~/.prefect. Only the flow tests ask for it (``prefect_harness``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
for path in (HERE, REPO):  # ingest_fakes (the base model's module:function), flows/
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    from prefect.settings import PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings(updates={PREFECT_HOME: str(home)}):
        with prefect_test_harness(server_startup_timeout=120):
            yield home


@pytest.fixture(scope="session")
def scope():
    """The real MiniLM scope classifier (untrained calibration: routing is already meaningful)."""
    from serac.config import ScopeConfig
    from serac.models.scope import ScopeClassifier

    return ScopeClassifier.from_config(ScopeConfig())


@pytest.fixture
def make_editor(scope):
    """``make_editor(memory_root)``: a SeracEditor on a fresh memory, built in memory (no save/load)."""
    from ingest_fakes import build_editor

    return lambda memory_root: build_editor(scope, memory_root)


@pytest.fixture(scope="session")
def editor_dir(scope, tmp_path_factory) -> Path:
    """The tiny editor saved once (without memory): what the flow loads with SeracEditor.load."""
    from ingest_fakes import build_editor

    tmp = tmp_path_factory.mktemp("editor")
    return build_editor(scope, tmp / "seed-memory").save(tmp / "editor", include_memory=False)
