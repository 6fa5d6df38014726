"""The one training orchestration (train_components / train_editor): the task's judge, base, scope and
counterfactual training in order, resumed from artifacts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from serac.config import ProjectConfig, TrainConfig, TrainingConfig
from serac.data.schema import EditRecord
from serac.data.synthetic import synthetic_edits
from serac.models.base import HFBaseModel
from serac.training.editor import (
    COMPONENTS,
    TrainingData,
    pipeline_trains_base,
    train_base,
    train_components,
    train_editor,
)
from serac.training.loop import PrefixedHook, TrainResult

STEPS = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, eval_every=1000, checkpoint_every=1000)


@pytest.fixture
def config(tmp_path) -> ProjectConfig:
    cfg = ProjectConfig()
    return replace(
        cfg,
        counterfactual=replace(cfg.counterfactual, decoder_layers=1),
        base=replace(cfg.base, decoder_layers=1),
        editor=replace(cfg.editor, device="cpu"),
        training=TrainingConfig(scope=STEPS, scope_cross=STEPS, counterfactual=STEPS, base=STEPS, hard_negatives=1),
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


class Recorder:
    """Stands in for the component trainers: records the call order and the hooks' metric names."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.logged: list[str] = []

    def result(self, steps: int) -> TrainResult:
        return TrainResult(steps=steps, resumed_from=0, best_metric=None, stopped="max_steps", seconds=0.0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logged += list(metrics)

    def install(self, monkeypatch) -> None:
        from serac.training import editor as steps

        def trainer(name: str, steps_taken: int, wrap):
            def fake(*args, **kwargs):
                self.calls.append(name)
                lists = [a for a in (*args, *kwargs.values()) if isinstance(a, list)]
                for hook in (h for group in lists for h in group if isinstance(h, PrefixedHook)):
                    hook.log_metrics({"loss": 1.0}, step=0)
                return wrap(self.result(steps_taken))
            return fake

        monkeypatch.setattr(steps, "train_task_judge", trainer("judge", 3, lambda r: (r, 0.75)))
        monkeypatch.setattr(steps, "train_base", trainer("base", 2, lambda r: r))
        monkeypatch.setattr(steps, "train_scope", trainer("scope", 4, lambda r: (None, {"scope_embedding": r,
                                                                                       "scope_cross": r})))
        monkeypatch.setattr(steps, "train_counterfactual_model", trainer("counterfactual", 5, lambda r: (None, r)))
        monkeypatch.setattr(steps, "train_variants", trainer("variants", 6, lambda r: {"variant_causal_lora": r}))


def convsent_record(i: int) -> EditRecord:
    return EditRecord("convsent", f"What do you think of E{i}?", "positive", subject=f"E{i}")


def test_one_orchestration_trains_the_tasks_judge_first_and_reports_each_component(tmp_path, config, monkeypatch):
    recorder = Recorder()
    recorder.install(monkeypatch)
    data = TrainingData([convsent_record(0)], [], [convsent_record(0)])
    report = train_components(config, data, tmp_path, hooks=[recorder])
    assert recorder.calls == list(COMPONENTS) == ["judge", "base", "scope", "counterfactual", "variants"]
    assert report.task == "convsent" and report.judge_accuracy == 0.75
    assert report.steps == {"judge": 3, "base": 2, "scope": 8, "counterfactual": 5, "variants": 6}
    assert set(report.seconds) == set(report.steps)
    assert recorder.logged == ["judge/loss", "base/loss", "scope/loss", "counterfactual/loss", "variants/loss"]


def test_a_task_without_a_judge_trains_none_and_one_component_alone_is_possible(tmp_path, config, monkeypatch):
    recorder = Recorder()
    recorder.install(monkeypatch)
    records = synthetic_edits(2, seed=1)
    report = train_components(config, TrainingData(records, [], records), tmp_path)
    assert recorder.calls == ["base", "scope", "counterfactual", "variants"] and report.judge_accuracy is None
    recorder.calls.clear()
    only = train_components(config, TrainingData(records, [], records), tmp_path, only=("scope",))
    assert recorder.calls == ["scope"] and set(only.results) == {"scope_embedding", "scope_cross"}
    with pytest.raises(ValueError, match="unknown components"):
        train_components(config, TrainingData(records, [], records), tmp_path, only=("decoder",))


def test_a_trained_embedding_scope_is_reused_when_the_kind_gains_a_cross_encoder(tmp_path, config):
    import numpy as np

    from serac.models.scope import ScopeClassifier
    from serac.training.editor import train_scope

    records = synthetic_edits(12, seed=3)
    train, val = records[:9], records[9:]
    embedding_only, first = train_scope(config, train, val, tmp_path)
    assert first["scope_embedding"].steps == 2 and "scope_cross" not in first
    rerank = replace(config, scope=replace(config.scope, kind="rerank", top_k=3, rerank_above=0.1))
    scope, second = train_scope(rerank, train, val, tmp_path)
    assert second["scope_embedding"] is None and second["scope_cross"].steps == 2
    assert (tmp_path / "scope" / "cross" / "model.safetensors").is_file()
    assert scope.config.kind == "rerank" and scope.config.rerank_above == 0.1
    queries = [r.edit_input for r in records]
    np.testing.assert_array_equal(scope.embed_queries(queries), embedding_only.embed_queries(queries))
    again, third = train_scope(rerank, train, val, tmp_path)
    assert third == {"scope_embedding": None} and again.cross is not None and again.config == scope.config
    # routing settings and the kind need no training: a reused classifier takes them (and keeps its cross-encoder)
    wider = replace(rerank, scope=replace(rerank.scope, top_k=4, rerank_above=0.3, rerank_mix=0.5))
    assert train_scope(wider, train, val, tmp_path)[0].config == replace(
        scope.config, top_k=4, rerank_above=0.3, rerank_mix=0.5)
    assert ScopeClassifier.load(tmp_path / "scope").config.rerank_above == 0.3
    assert ScopeClassifier.load(tmp_path / "scope").config.rerank_mix == 0.5
    plain = train_scope(config, train, val, tmp_path)[0]
    assert plain.config.kind == "embedding" and plain.cross is not None
    assert train_scope(rerank, train, val, tmp_path)[1] == {"scope_embedding": None}  # nothing retrained
