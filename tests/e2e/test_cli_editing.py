"""End to end through the CLI: train an editor briefly, add an edit with `serac edit add`,
and check that the edit's rephrasings change answer while unrelated queries keep theirs.

The default variant trains on synthetic edits for a couple of minutes; the slow one
(``-m slow``) trains on real CounterFact edits from ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from serac.cli.main import app
from serac.data.prepare import read_split
from serac.data.schema import records_to_table
from serac.data.synthetic import synthetic_edits
from serac.io import write_parquet
from serac.metrics import exact_match

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def write_params(tmp: Path, prepared: Path, dataset: str, steps: dict[str, int]) -> Path:
    def train(n: int, lr: float) -> dict:
        return {"max_steps": n, "batch_size": 16, "lr": lr, "warmup_steps": min(10, n), "eval_every": 10**6,
                "checkpoint_every": 10**6}

    params = {
        "base": {"decoder_layers": 1},
        "editor": {"device": "cpu", "artifact_dir": str(tmp / "editor")},
        "memory": {"root": str(tmp / "memory")},
        "tracking": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db", "artifact_root": str(tmp / "mlruns")},
        "training": {
            "dataset": dataset,
            "data_dir": str(prepared),
            "max_train_edits": 400,
            "max_val_edits": 16,
            "scope": train(steps["scope"], 5e-5),
            "counterfactual": train(steps["counterfactual"], 1e-4),
            "base": train(steps["base"], 1e-4),
        },
    }
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def query(runner: CliRunner, params: Path, *queries: str) -> list[dict]:
    result = runner.invoke(app, ["query", "--params", str(params), "--json", *queries])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.strip().splitlines()]


def run_scenario(tmp_path: Path, dataset: str, steps: dict[str, int], edit, unrelated: list[str]) -> None:
    runner = CliRunner()
    params = write_params(tmp_path, tmp_path / "prepared", dataset, steps)
    trained = runner.invoke(app, ["train", "--params", str(params), "--work", str(tmp_path / "work")])
    assert trained.exit_code == 0, trained.output

    rephrasings = [e.input for e in edit.in_scope]
    before = query(runner, params, *rephrasings, *unrelated)
    assert all(p["routed_to"] == "base" for p in before)  # empty memory

    added = runner.invoke(app, ["edit", "add", "--params", str(params), "--input", edit.edit_input,
                                "--label", edit.edit_label, "--task", edit.task])
    assert added.exit_code == 0, added.output
    assert "added 1 edit" in added.output

    after = query(runner, params, *rephrasings, *unrelated)
    edited, others = after[: len(rephrasings)], after[len(rephrasings):]
    assert all(p["routed_to"] == "counterfactual" and p["edit_id"] == edit.edit_id for p in edited), edited
    assert all(exact_match(p["answer"], edit.edit_label) for p in edited), edited
    assert [p["answer"] for p in others] == [p["answer"] for p in before[len(rephrasings):]]
    assert all(p["routed_to"] == "base" for p in others)


def test_cli_edit_changes_rephrasings_only_synthetic(tmp_path):
    records = synthetic_edits(240, seed=7)
    for split, part in {"train": records[:200], "val": records[200:220], "test": records[220:]}.items():
        write_parquet(tmp_path / "prepared" / "synthetic" / f"{split}.parquet", records_to_table(part))
    new_edit = records[230]  # a held-out subject: never seen in training
    unrelated = ["How do I bake banana bread?", "What is the boiling point of water?"]
    run_scenario(tmp_path, "synthetic", {"scope": 5, "counterfactual": 60, "base": 5}, new_edit, unrelated)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "counterfact").is_dir(), reason="needs ../shared/data")
def test_cli_edit_changes_rephrasings_only_counterfact(tmp_path):
    from serac.config import DataConfig
    from serac.data.prepare import prepare

    prepare(DataConfig(raw_root=str(SHARED), prepared_dir=str(tmp_path / "prepared")))
    test = read_split(tmp_path / "prepared", "counterfact", "test", 50)
    edit = next(r for r in test if len(r.edit_label.split()) <= 2)
    unrelated = [r.out_of_scope[0].input for r in test[-3:]]
    run_scenario(tmp_path, "counterfact", {"scope": 50, "counterfactual": 300, "base": 20}, edit, unrelated)
