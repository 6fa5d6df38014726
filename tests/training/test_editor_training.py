"""train_editor wires base, scope and counterfactual training together and resumes from artifacts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from serac.config import ProjectConfig, TrainConfig, TrainingConfig
from serac.data.synthetic import synthetic_edits
from serac.models.base import HFBaseModel
from serac.training.editor import pipeline_trains_base, train_base, train_editor

STEPS = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, eval_every=1000, checkpoint_every=1000)


@pytest.fixture
def config(tmp_path) -> ProjectConfig:
    cfg = ProjectConfig()
    return replace(
        cfg,
        counterfactual=replace(cfg.counterfactual, decoder_layers=1),
        base=replace(cfg.base, decoder_layers=1),
        editor=replace(cfg.editor, device="cpu"),
        training=TrainingConfig(scope=STEPS, counterfactual=STEPS, base=STEPS, hard_negatives=1),
    )


def test_train_editor_trains_each_part_once_then_reuses_artifacts(tmp_path, config):
    records = synthetic_edits(16, seed=1)
    train, val = records[:12], records[12:]
    assert pipeline_trains_base(config)
    editor, report = train_editor(config, train, val, tmp_path / "work")
    assert {k: r.steps for k, r in report.results.items()} == {
        "base": 2, "scope_embedding": 2, "counterfactual": 2}
    assert isinstance(editor.base, HFBaseModel) and editor.base.trained_here
    for part in ("base", "scope", "counterfactual"):
        assert (tmp_path / "work" / part / "config.json").exists()
    editor.edit(train[:3])
    before = editor.predict([train[0].in_scope[0].input, "Completely unrelated question?"])

    again, report2 = train_editor(config, train, val, tmp_path / "work")
    assert all(r is None for r in report2.results.values())
    again.edit(train[:3])
    assert again.predict([train[0].in_scope[0].input, "Completely unrelated question?"]) == before


def test_configured_base_model_is_referenced_not_trained(tmp_path, config):
    cfg = replace(config, base=replace(config.base, kind="callable", callable="json:dumps"))
    assert not pipeline_trains_base(cfg)
    assert train_base(cfg, synthetic_edits(4), tmp_path) is None
    reference = json.loads((tmp_path / "base" / "reference.json").read_text())
    assert reference["kind"] == "callable" and reference["callable"] == "json:dumps"
    assert not (tmp_path / "base" / "model.safetensors").exists()
