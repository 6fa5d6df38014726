"""MLflow tracking helpers on a throwaway local store: URI resolution, experiment creation,
the training-loop hook, flat params, metrics by k, plots and version tags."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow import MlflowClient

from serac.config import ProjectConfig, TrackingConfig
from serac.registry.tracking import (
    MAX_PARAM_VALUE_LENGTH,
    MlflowHook,
    configure_mlflow,
    dvc_hash,
    flatten_metrics_by_k,
    flatten_params,
    git_commit,
    log_metrics_by_k,
    log_params_flat,
    log_plot,
    resolve_tracking_uri,
    sanitize_key,
    set_version_tags,
    start_run,
)


def test_relative_sqlite_uri_resolves_against_the_root_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(TrackingConfig(), root=tmp_path) == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    absolute = f"sqlite:///{tmp_path}/elsewhere.db"
    assert resolve_tracking_uri(TrackingConfig(tracking_uri=absolute), root="/") == absolute
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.team:5000")
    assert resolve_tracking_uri(TrackingConfig(), root=tmp_path) == "http://mlflow.team:5000"


def test_configure_creates_the_experiment_once_with_artifacts_under_the_root(store):
    client = MlflowClient()
    experiment = client.get_experiment_by_name(store.experiment_name)
    root = store.tracking_uri[len("sqlite:///") :].rsplit("/", 1)[0]
    assert experiment.artifact_location == f"file://{root}/artifacts/serac-test"
    assert configure_mlflow(store) == experiment.experiment_id  # idempotent
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    # our own exported URI does not count as "the user set MLFLOW_TRACKING_URI"
    assert os.environ["MLFLOW_TRACKING_URI"] == store.tracking_uri
    other = TrackingConfig(tracking_uri=store.tracking_uri, artifact_root=store.artifact_root, experiment_name="other")
    assert configure_mlflow(other) != experiment.experiment_id
    configure_mlflow(store)


def test_sanitize_key():
    assert sanitize_key("train/loss") == "train/loss"
    assert sanitize_key("val/es@k=10 (ü)") == "val/es_k_10 _ü_"
    assert sanitize_key("/a//b/../c/") == "a/b/_/c"
    assert sanitize_key("") == "_"
    assert len(sanitize_key("x" * 300)) == 250


def test_hook_logs_metrics_with_their_steps_under_a_prefix(store):
    with start_run(store, run_name="hook", tags={"component": "scope"}) as run:
        hook = MlflowHook(prefix="scope/")
        hook.log_metrics({"train/loss": 2.0, "train/lr_scale": 0.5, "bad:key?": 1.0, "note": "skipped"}, step=1)
        hook.log_metrics({"train/loss": 1.5}, step=2)
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "scope/train/loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 2.0), (2, 1.5)]
    data = client.get_run(run.info.run_id).data
    assert set(data.metrics) == {"scope/train/loss", "scope/train/lr_scale", "scope/bad_key_"}
    assert data.tags["component"] == "scope"
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_helpers_refuse_to_start_a_run_by_accident(store):
    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        MlflowHook().log_metrics({"loss": 1.0}, step=0)


def test_params_are_flattened_with_dotted_keys_and_truncated(store):
    flat = flatten_params({"a": {"b": [1, "all"], "c": None}, "long": "x" * 7000, "empty": {}}, prefix="cfg")
    assert flat["cfg.a.b"] == '[1, "all"]' and flat["cfg.a.c"] == "None" and flat["cfg.empty"] == "{}"
    assert len(flat["cfg.long"]) == MAX_PARAM_VALUE_LENGTH
    with start_run(store, run_name="params") as run:
        logged = log_params_flat(ProjectConfig())
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert params == logged and len(params) > 100  # more than one MLflow batch
    assert params["training.scope.lr"] == "5e-05" and params["editor.threshold"] == "0.5"
    assert params["registry.model_name"] == "serac-editor"


RESULTS = {
    "eval_set": "sha256:abc",
    "serac": {"10": {"es": 0.9, "dd": 0.05}, "100": {"es": 0.8, "dd": 0.1}, "all": {"es": 0.7, "dd": 0.2}},
    "lu": {"k1": {"es": 1.0, "p50_ms": 3, "auroc": None}},  # the shape of serac.evaluation.report.metrics_dict
    "ft": {"skipped": "no time budget"},
    "n_edits": 250,
    "notes": ["not", "numbers"],
}


def test_metrics_by_k_are_named_per_k_and_stepped_by_k(store):
    named, stepped = flatten_metrics_by_k(RESULTS)
    assert named == {"serac.k10.es": 0.9, "serac.k10.dd": 0.05, "serac.k100.es": 0.8, "serac.k100.dd": 0.1,
                     "serac.kall.es": 0.7, "serac.kall.dd": 0.2, "lu.k1.es": 1.0, "lu.k1.p50_ms": 3.0,
                     "n_edits": 250.0}  # fmt: skip
    assert ("serac.es", 0.8, 100) in stepped and not any(name.startswith("serac.kall") for name, _, _ in stepped)
    with start_run(store, run_name="eval") as run:
        log_metrics_by_k(RESULTS, prefix="test/")
    client = MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics["test/serac.k10.es"] == 0.9
    curve = client.get_metric_history(run.info.run_id, "test/serac.es")
    assert sorted((m.step, m.value) for m in curve) == [(10, 0.9), (100, 0.8)]


def test_plots_and_version_tags(store, tmp_path):
    png = tmp_path / "es_vs_k.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with start_run(store, run_name="lineage") as run:
        assert log_plot(png) == "plots/es_vs_k.png"
        with pytest.raises(FileNotFoundError):
            log_plot(tmp_path / "missing.png")
        tags = set_version_tags("abc123.dir", 7, None)
    client = MlflowClient()
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/es_vs_k.png"]
    run_tags = client.get_run(run.info.run_id).data.tags
    assert tags == {"data.dvc_md5": "abc123.dir", "memory.version": "7"}
    assert run_tags["data.dvc_md5"] == "abc123.dir" and run_tags["memory.version"] == "7"
    assert "git.commit" not in run_tags


def test_dvc_hash_reads_dvc_lock_and_dot_dvc_files(tmp_path):
    lock = tmp_path / "dvc.lock"
    assert dvc_hash("data/prepared", lock) is None  # no lock file
    lock.write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    cmd: serac prepare\n"
        "    deps:\n    - path: ../shared/data\n      hash: md5\n      md5: deadbeef.dir\n"
        "    outs:\n    - path: data/prepared\n      hash: md5\n      md5: 0123abcd.dir\n      size: 10\n"
        "    - path: metrics.json\n      hash: md5\n      md5: 4567ef\n"
    )
    assert dvc_hash("data/prepared", lock) == "0123abcd.dir"
    assert dvc_hash("data/prepared/", lock) == "0123abcd.dir"
    assert dvc_hash(tmp_path / "metrics.json", lock) == "4567ef"
    assert dvc_hash("../shared/data", lock) is None  # a dependency, not an output
    assert dvc_hash("data/other", lock) is None
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.dvc").write_text("outs:\n- md5: 89ab.dir\n  path: raw\n")
    assert dvc_hash("data/raw", lock) == "89ab.dir"


def test_the_one_dvc_file_reader_raises_on_a_broken_file_and_names_it(tmp_path):
    """Both the ingest pipeline and the registry read md5s through serac.dvc_files: a broken file is an
    error naming it (the registry's copy used to return None, tagging a run as if the data were untracked)."""
    from serac.dvc_files import DvcFileError, read_dvc_md5
    from serac.pipeline import dvc

    assert dvc.read_dvc_md5 is read_dvc_md5
    lock = tmp_path / "dvc.lock"
    (tmp_path / "raw.dvc").write_text("outs: []\n")
    with pytest.raises(DvcFileError, match=r"raw\.dvc: expected exactly one output"):
        dvc_hash("raw", lock)
    with pytest.raises(DvcFileError, match=r"raw\.dvc: expected exactly one output"):
        read_dvc_md5(tmp_path / "raw.dvc")
    with pytest.raises(DvcFileError, match=r"missing\.dvc: no such file"):
        read_dvc_md5(tmp_path / "missing.dvc")
    assert dvc_hash("missing", lock) is None  # untracked is not an error for dvc_hash
    lock.write_text(": not yaml : [")
    with pytest.raises(DvcFileError, match=r"dvc\.lock: not valid YAML"):
        dvc_hash("data/prepared", lock)


def test_git_commit_reads_refs_packed_refs_and_detached_heads(tmp_path):
    commit = "a" * 40
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(commit + "\n")
    (tmp_path / "repo" / "sub").mkdir()
    assert git_commit(tmp_path / "repo" / "sub") == commit
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{'b' * 40} refs/heads/main\n^{'c' * 40}\n")
    assert git_commit(tmp_path / "repo") == "b" * 40
    (git / "HEAD").write_text("d" * 40 + "\n")
    assert git_commit(tmp_path / "repo") == "d" * 40
