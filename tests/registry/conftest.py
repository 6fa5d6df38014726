"""A throwaway MLflow store per test module (SQLite + artifacts under tmp); the repo's mlflow/ is never used."""

from __future__ import annotations

import os

import pytest

from serac.config import TrackingConfig


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> TrackingConfig:
    """Tracking config of a fresh store, already configured (1-2 s for the SQLite schema)."""
    import mlflow

    from serac.registry.tracking import configure_mlflow

    root = tmp_path_factory.mktemp("mlflow")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    cfg = TrackingConfig(
        tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=str(root / "artifacts"), experiment_name="serac-test"
    )
    configure_mlflow(cfg)
    yield cfg
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # also drops the MLFLOW_TRACKING_URI it exported
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="session", autouse=True)
def operator_base():
    """The serving process names the callable base (an editor's own files may not): every MLflow model
    here is loaded, in process or by ``mlflow models serve``, with ``SERAC_BASE_CALLABLE`` set."""
    from registry_support import BASE_REFERENCE

    from serac.registry.pyfunc import BASE_CALLABLE_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BASE_CALLABLE_ENV, BASE_REFERENCE)
        yield
