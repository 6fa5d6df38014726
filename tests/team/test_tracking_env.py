"""Team mode selects the MLflow server only through MLFLOW_TRACKING_URI, on every call of a process."""

from __future__ import annotations

from serac.config import TrackingConfig
from serac.registry import tracking


def test_the_users_tracking_uri_wins_on_every_configure(tmp_path, monkeypatch):
    team_uri = f"sqlite:///{tmp_path}/team.db"  # stands for http://mlflow-server:5000
    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/solo.db", artifact_root=str(tmp_path / "art"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_uri)
    for _ in range(3):  # e.g. a resumed flow closing old runs, then starting its own
        tracking.configure_mlflow(cfg)
        assert tracking.resolve_tracking_uri(cfg) == team_uri
    assert (tmp_path / "team.db").exists() and not (tmp_path / "solo.db").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # no server configured: the params' store again
    tracking.configure_mlflow(cfg)
    assert tracking.resolve_tracking_uri(cfg) == cfg.tracking_uri
    tracking.configure_mlflow(cfg)  # mlflow copied its URI into the environment: still ours, not the user's
    assert tracking.resolve_tracking_uri(cfg) == cfg.tracking_uri
