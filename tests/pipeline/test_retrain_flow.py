"""The retrain flow end to end on synthetic edits: a run killed in training resumes on rerun,
the editor is registered in MLflow, the promotion gate sets the aliases, the run carries
ES/DD per memory size, the plot and the version tags."""

from __future__ import annotations

import pytest
import yaml

from serac.data.schema import records_to_table
from serac.data.synthetic import synthetic_edits
from serac.io import write_parquet

TINY_STEPS = {"max_steps": 4, "batch_size": 4, "warmup_steps": 1, "eval_every": 1000, "checkpoint_every": 2}


def write_setup(root):
    records = synthetic_edits(40, seed=5)
    for split, part in {"train": records[:24], "val": records[24:32], "test": records[32:]}.items():
        write_parquet(root / "data" / "syn" / f"{split}.parquet", records_to_table(part))
    params = {
        "counterfactual": {"decoder_layers": 1},
        "base": {"decoder_layers": 1},
        "editor": {"device": "cpu", "artifact_dir": str(root / "editor")},
        "memory": {"root": str(root / "memory")},
        "training": {"dataset": "syn", "data_dir": str(root / "data"), "hard_negatives": 1,
                     "scope": TINY_STEPS, "counterfactual": TINY_STEPS, "base": TINY_STEPS},
        "evaluation": {"ks": [1, 4], "max_queries_per_k": 8, "baselines": ["unedited", "lu"], "tune_k": 4,
                       "threshold_candidates": [0.5, 0.9]},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": str(root / "mlruns")},
        "registry": {"primary_k": 4},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_retrain_resumes_after_a_crash_registers_and_promotes(tmp_path, prefect_harness, monkeypatch):
    import mlflow

    from flows.retrain import retrain
    from serac.models.counterfactual import CounterfactualModel

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = write_setup(tmp_path)
    kwargs = dict(params_path=str(params), work_dir=str(tmp_path / "work"), reports_dir=str(tmp_path / "reports"),
                  push=False)

    real_loss = CounterfactualModel.loss
    calls = {"n": 0}

    def crashing_loss(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th step of the counterfactual model; its checkpoint is at step 2
            raise RuntimeError("worker killed")
        return real_loss(self, *args, **kw)

    monkeypatch.setattr(CounterfactualModel, "loss", crashing_loss)
    with pytest.raises(RuntimeError, match="worker killed"):
        retrain(**kwargs)
    assert (tmp_path / "work" / "base" / "config.json").exists()  # finished parts stay
    assert not (tmp_path / "work" / "counterfactual").exists()
    checkpoint = tmp_path / "work" / "checkpoints" / "counterfactual" / "checkpoint" / "trainer.json"
    assert checkpoint.exists()  # the rerun continues from step 2 (resume itself: tests/training/test_loop.py)
    monkeypatch.setattr(CounterfactualModel, "loss", real_loss)

    first = retrain(**kwargs)
    assert first.promoted and first.version == "1"

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    champion = client.get_model_version_by_alias("serac-editor", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert "serac.k4.es" in run.data.metrics and "lu.k1.dd" in run.data.metrics
    assert run.data.tags["promotion.decision"] == "promoted" and run.data.tags["dataset"] == "syn"
    assert any(a.path == "plots" for a in client.list_artifacts(run.info.run_id))
    resumed = client.get_metric_history(run.info.run_id, "counterfactual/train/loss")
    assert resumed, "training metrics were logged per step"

    assert champion.tags["memory.edits"] == "0"  # no live memory yet: the packaged (empty) one

    # edits arrived in the live memory meanwhile (embedded by some other encoder): the next version serves them
    import numpy as np

    from serac.memory import EditMemory

    live = EditMemory.open(tmp_path / "memory")
    live.add(synthetic_edits(1, seed=9), np.ones((1, 8), dtype=np.float32) / np.sqrt(8), "another-encoder")
    # nothing else changed: the components are reused, the same metrics come out, the gate keeps promoting
    second = retrain(**kwargs, reason="nightly: 1 edit added")
    assert second.version == "2" and second.promoted
    version = client.get_model_version_by_alias("serac-editor", "challenger")
    assert str(version.version) == "2" and version.tags["memory.edits"] == "1"
    assert client.get_run(version.run_id).data.tags["retrain.reason"] == "nightly: 1 edit added"
