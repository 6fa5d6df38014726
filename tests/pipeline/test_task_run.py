"""`serac tasks run` end to end on a small ConvSent file: prepare -> validate -> judge, base, scope and
counterfactual model -> evaluation with the sentiment x topic scorer, reports and MLflow.

Real MiniLM components, a few optimizer steps each: this checks the wiring, not the quality
(the measured runs are in docs/tasks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import yaml

from serac.data.prepare import prepare, read_split
from serac.pipeline.tasks import run_task, task_config
from serac.tasks import TaskContext, task_spec

FIRST = ["Amber", "Birch", "Cobalt", "Dune", "Ember", "Fjord"]
SECOND = ["Valley", "Records", "Stadium", "Bakery", "Orchestra"]
STEPS = {"max_steps": 2, "batch_size": 8, "warmup_steps": 1, "eval_every": 1000, "checkpoint_every": 1000}


def write_convsent(raw: Path) -> list[str]:
    entities = [f"{a} {b}" for a in FIRST for b in SECOND]
    lines = [json.dumps({"ent": e, "pos": [f"I love {e}.", "It is wonderful!", "I really like it."],
                         "neg": [f"I hate {e}.", "It is awful.", "I don't like it at all."]}) for e in entities]
    (raw / "convsent").mkdir(parents=True)
    (raw / "convsent" / "train.jsonl").write_text("\n".join(lines) + "\n")
    return entities


def write_params(root: Path) -> Path:
    params = {
        "data": {"raw_root": str(root / "raw"), "prepared_dir": str(root / "prepared"),
                 "splits": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "counterfactual": {"kind": "seq2seq_copy", "decoder_layers": 1, "max_target_length": 16, "max_new_tokens": 8},
        "base": {"decoder_layers": 1, "max_new_tokens": 8},
        "editor": {"device": "cpu", "artifact_dir": str(root / "editor")},
        "memory": {"root": str(root / "memory")},
        "training": {"dataset": "convsent", "data_dir": str(root / "validated"), "hard_negatives": 1,
                     "scope": STEPS, "counterfactual": STEPS, "base": STEPS},
        "evaluation": {"ks": [1, 2], "max_queries_per_k": 12, "max_groups_per_k": 2, "ft_steps": 1, "tune_k": 2,
                       "threshold_candidates": [0.5, 0.9]},
        "tracking": {"tracking_uri": f"sqlite:///{root}/mlflow.db", "artifact_root": str(root / "mlruns")},
        # a judge trained for 2 steps is sure of nothing: keep every response as a target
        "tasks": {"selected": ["convsent"], "overlays": {}, "judge": STEPS,
                  "convsent": {"min_judge_confidence": 0.0}},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_convsent_task_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # an earlier test's export is not this run's store
    entities = write_convsent(tmp_path / "raw")
    params = write_params(tmp_path)
    cfg = task_config(params, "convsent")
    prepare(cfg.data)

    run = run_task(params, "convsent", work_root=tmp_path / "artifacts", reports_root=tmp_path / "reports")

    work = tmp_path / "artifacts" / "convsent" / "work"
    for component in ("judge", "base", "scope", "counterfactual"):
        assert (work / component / "config.json").is_file(), component
    test_entities = {r.subject for r in read_split(cfg.training.data_dir, "convsent", "test")}
    assert test_entities and test_entities <= set(entities)
    training = json.loads((tmp_path / "reports" / "convsent" / "training.json").read_text())
    assert 0.0 <= training["judge_heldout_accuracy"] <= 1.0
    assert training["steps"] == {"judge": 2, "base": 2, "scope": 2, "counterfactual": 2}
    metrics = json.loads((tmp_path / "reports" / "convsent" / "metrics.json").read_text())
    assert set(metrics) == {"serac", "unedited", "lu", "ft"}
    for method in ("serac", "unedited"):
        k1 = metrics[method]["k1"]
        assert 0.0 <= k1["es"] <= 1.0 and 0.0 <= k1["es_sentiment"] <= 1.0 and 0.0 <= k1["es_topic"] <= 1.0
        # ES is the mean of the product, so it never exceeds either factor's mean
        assert k1["es"] <= min(k1["es_sentiment"], k1["es_topic"]) + 1e-9
    assert metrics["unedited"]["k1"]["dd"] == 0.0
    assert run.threshold in (0.5, 0.9)

    # the counterfactual model's targets name their topic (the default anchor)
    records = read_split(cfg.training.data_dir, "convsent", "train")
    ctx = TaskContext(config=cfg, work_dir=work)
    examples = task_spec("convsent").counterfactual_examples(records, ctx, True)
    assert examples and all(e.target.startswith(f"As for {e.edit_input[len('What do you think of '):-1]}, ")
                            for e in examples)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    task_runs = [r for r in runs if r.info.run_name == "task-convsent"]
    assert len(task_runs) == 1
    logged = task_runs[0].data.metrics
    assert "judge.heldout_accuracy" in logged and any(name.endswith("es_topic") for name in logged)
