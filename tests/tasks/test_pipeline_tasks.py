"""Per-task configuration and data preparation of ``serac tasks run`` (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serac.config import ConfigError, load_config
from serac.data.prepare import read_split
from serac.data.schema import EditRecord, Example, records_to_table
from serac.io import write_parquet
from serac.pipeline.tasks import prepare_task_data, task_config

ROOT = Path(__file__).parents[2]


def test_repository_overlays_select_one_editor_per_task():
    cfg = load_config(ROOT / "params.yaml")
    for task in cfg.tasks.selected:
        tc = task_config(ROOT / "params.yaml", task)
        assert tc.training.dataset == task
        assert tc.editor.artifact_dir == f"artifacts/{task}/editor"
    fc = task_config(ROOT / "params.yaml", "fc")
    assert (fc.counterfactual.kind, fc.base.kind) == ("classifier", "classifier")


def test_an_overlay_for_another_dataset_is_refused(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tasks": {"overlays": {"fc": "o.yaml"}}}))
    (tmp_path / "o.yaml").write_text(yaml.safe_dump({"training": {"dataset": "zsre"}}))
    with pytest.raises(ConfigError, match="fc"):
        task_config(tmp_path / "params.yaml", "fc")


def test_qa_and_fact_run_on_any_dataset_and_an_unknown_task_is_a_config_error(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tasks": {"overlays": {"qa": "o.yaml"}}}))
    (tmp_path / "o.yaml").write_text(yaml.safe_dump({"training": {"dataset": "zsre"}}))
    assert task_config(tmp_path / "params.yaml", "qa").training.dataset == "zsre"
    with pytest.raises(ConfigError, match="unknown task 'poetry'"):
        task_config(tmp_path / "params.yaml", "poetry")


def source(i: int) -> EditRecord:
    return EditRecord("qa", f"What is the capital of Land{i}?", f"City{i}", subject=f"Land{i}",
                      ground_truth=f"Old{i}", in_scope=[Example(f"Land{i} has which capital?", f"City{i}")],
                      out_of_scope=[Example(f"who wrote book {i}", f"Author{i}")])


def test_prepare_generates_and_validates_missing_splits(tmp_path):
    prepared, validated = tmp_path / "prepared", tmp_path / "validated"
    for split, ids in (("train", range(4)), ("val", range(4, 6)), ("test", range(6, 8))):
        write_parquet(prepared / "zsre" / f"{split}.parquet", records_to_table([source(i) for i in ids]))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "data": {"prepared_dir": str(prepared)},
        "training": {"dataset": "qa_hard", "data_dir": str(validated)},
        "tasks": {"generate": {"sources": ["zsre"], "neighbours": 1}},
    }))
    cfg = load_config(tmp_path / "params.yaml")
    assert prepare_task_data(cfg, "qa_hard") == {"train": 4, "val": 2, "test": 2}
    train = read_split(validated, "qa_hard", "train")
    assert [r.task for r in train] == ["qa_hard"] * 4 and all(len(r.in_scope) == 5 for r in train)
    assert prepare_task_data(cfg, "qa_hard") == {}  # everything there: nothing redone


def test_counterfactual_warm_start_from_a_trained_artifact(tmp_path):
    from dataclasses import replace

    from tiny import tiny_counterfactual

    from serac.config import ProjectConfig, TasksConfig, TrainConfig, TrainingConfig
    from serac.models.counterfactual import CounterfactualModel
    from serac.tasks import TaskContext
    from serac.training.editor import train_counterfactual_model

    start = tiny_counterfactual()
    start.save(tmp_path / "start")
    tc = TrainConfig(max_steps=1, batch_size=2, warmup_steps=0, eval_every=1000000, checkpoint_every=1000)
    cfg = ProjectConfig(training=TrainingConfig(counterfactual=tc),
                        tasks=TasksConfig(init_counterfactual=str(tmp_path / "start")))
    cfg = replace(cfg, editor=replace(cfg.editor, device="cpu"))
    recs = [source(i) for i in range(2)]
    _, result = train_counterfactual_model(cfg, recs, [], tmp_path / "work", ctx=TaskContext(config=cfg))
    assert result is not None and result.steps == 1
    tuned = CounterfactualModel.load(tmp_path / "work" / "counterfactual")
    # the tiny starting model, not the configured MiniLM default: same (tiny) width
    assert tuned.text_to_text.model.config.encoder.hidden_size == start.text_to_text.model.config.encoder.hidden_size
    assert train_counterfactual_model(cfg, recs, [], tmp_path / "work", ctx=TaskContext(config=cfg))[1] is None  # reused


def test_serac_train_base_learns_the_tasks_pre_edit_world(tmp_path, monkeypatch):
    """`serac train` on QA-hard data must teach the base model the *pre-edit* true/false answers."""
    from serac.data.generators import pre_edit_pairs, qa_hard_record
    from serac.training import editor as steps

    records = [qa_hard_record(source(i), [source((i + 1) % 4)]) for i in range(4)]
    seen: dict[str, list] = {}

    def capture(model, pairs, *args, **kwargs):
        seen["pairs"] = list(pairs)
        raise StopIteration

    monkeypatch.setattr(steps, "train_text_to_text", capture)
    with pytest.raises(StopIteration):
        steps.train_base(task_config(ROOT / "params.yaml", "qa_hard"), records, tmp_path)  # its pipeline-trained base
    expected = {q: a for rec in records for q, a in pre_edit_pairs(rec)}
    assert dict(seen["pairs"]) == expected
    assert {"true", "false"} <= {a for _, a in seen["pairs"]}  # the implied t/f questions are answered
