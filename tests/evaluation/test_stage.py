"""The evaluate and package stages on a briefly trained editor over synthetic edits."""

from __future__ import annotations

import json
from dataclasses import replace

from typer.testing import CliRunner

from serac.cli.main import app
from serac.config import EvaluationConfig, ProjectConfig, TrainConfig, TrainingConfig
from serac.data.schema import records_to_table
from serac.data.synthetic import synthetic_edits
from serac.editor import SeracEditor
from serac.evaluation.stage import read_threshold, run_evaluation
from serac.io import write_parquet
from serac.training.editor import train_editor

STEPS = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, eval_every=1000, checkpoint_every=1000)


def test_evaluate_then_package(tmp_path, monkeypatch):
    records = synthetic_edits(40, seed=3)
    splits = {"train": records[:24], "val": records[24:32], "test": records[32:]}
    for split, part in splits.items():
        write_parquet(tmp_path / "data" / "syn" / f"{split}.parquet", records_to_table(part))
    base = ProjectConfig()
    cfg = replace(
        base,
        counterfactual=replace(base.counterfactual, decoder_layers=1),
        base=replace(base.base, decoder_layers=1),
        editor=replace(base.editor, device="cpu"),
        training=TrainingConfig(dataset="syn", data_dir=str(tmp_path / "data"), scope=STEPS, counterfactual=STEPS,
                                base=STEPS, hard_negatives=1),
        evaluation=EvaluationConfig(ks=(1, 4), max_queries_per_k=8, ft_steps=2, tune_k=4,
                                    threshold_candidates=(0.5, 0.9)),
    )
    train_editor(cfg, splits["train"], splits["val"], tmp_path / "work")
    run = run_evaluation(cfg, tmp_path / "work", tmp_path / "reports")

    assert {r.method for r in run.results} == {"serac", "unedited", "lu", "ft"}
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert set(metrics["serac"]) == {"k1", "k4"} and 0.0 <= metrics["serac"]["k4"]["es"] <= 1.0
    assert metrics["unedited"]["k1"]["dd"] == 0.0  # the unedited model cannot drift from itself
    rows = json.loads((tmp_path / "reports" / "es_dd_vs_k.json").read_text())
    assert {row["method"] for row in (rows if isinstance(rows, list) else rows["rows"])} >= {"serac", "lu"}
    assert (tmp_path / "reports" / "es_dd_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    assert run.choice is not None and run.threshold in {row["threshold"] for row in run.choice.table}
    assert {0.5, 0.9} <= {row["threshold"] for row in run.choice.table}  # the grid, refined above 0.9 at most
    assert read_threshold(tmp_path / "reports", 0.123) == run.threshold

    # package through the CLI with a params file pointing at the same settings
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"counterfactual": {"decoder_layers": 1}, "base": {"decoder_layers": 1},
                                      "editor": {"device": "cpu"}}))
    result = CliRunner().invoke(app, ["package", "--params", str(params), "--work", str(tmp_path / "work"),
                                      "--reports", str(tmp_path / "reports"), "--out", str(tmp_path / "editor")])
    assert result.exit_code == 0, result.output
    editor = SeracEditor.load(tmp_path / "editor")
    assert editor.config.threshold == run.threshold and len(editor.memory) == 0
