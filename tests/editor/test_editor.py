"""SeracEditor routing, editing, forgetting and save/load, with the real MiniLM scope encoder
(so routing is meaningful) and a tiny counterfactual model."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_counterfactual

from serac.config import EditorConfig, MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.artifacts import ArtifactError, ArtifactVersionError
from serac.models.base import CallableBaseModel
from serac.models.scope import ScopeClassifier


def base_answers(queries: list[str]) -> list[str]:
    return ["base:" + q for q in queries]


@pytest.fixture(scope="module")
def scope() -> ScopeClassifier:
    return ScopeClassifier.from_config(ScopeConfig())


def make_editor(tmp_path, scope, threshold: float = 0.5) -> SeracEditor:
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    return SeracEditor(scope, tiny_counterfactual(), CallableBaseModel(base_answers), memory,
                       EditorConfig(threshold=threshold, device="cpu"))


PM = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")])
RIVER = EditRecord("qa", "What is the longest river in Africa?", "Congo")


def test_empty_memory_routes_everything_to_the_base_model(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    preds = editor.predict(["Who is the UK's prime minister?", "What is 2+2?"])
    assert [p.routed_to for p in preds] == ["base", "base"]
    assert [p.answer for p in preds] == ["base:Who is the UK's prime minister?", "base:What is 2+2?"]
    assert all(p.edit_id is None and p.score == 0.0 for p in preds)
    assert editor.predict([]) == []


def test_edit_routes_rephrasings_to_the_counterfactual_model_and_forget_undoes_it(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    editor.edit([PM, RIVER])
    preds = editor.predict(["Who is the UK's prime minister?", "How do I bake banana bread?",
                            "Which river in Africa is the longest?"])
    assert preds[0].routed_to == "counterfactual" and preds[0].edit_id == PM.edit_id and preds[0].score > 0.5
    assert preds[1].routed_to == "base" and preds[1].answer == "base:How do I bake banana bread?"
    assert preds[2].routed_to == "counterfactual" and preds[2].edit_id == RIVER.edit_id
    editor.forget([PM.edit_id])
    again = editor.predict(["Who is the UK's prime minister?"])[0]
    assert again.edit_id != PM.edit_id and again.routed_to == "base"


def test_threshold_is_honoured(tmp_path, scope):
    editor = make_editor(tmp_path, scope, threshold=1.0)
    editor.edit([PM])
    assert editor.predict([PM.edit_input])[0].routed_to == "base"


def test_edit_is_idempotent(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    first = editor.edit([PM])
    second = editor.edit([PM])
    assert first.added == [PM.edit_id] and second.added == [] and second.skipped == [PM.edit_id]
    assert len(editor.memory) == 1


def test_save_load_round_trip_gives_identical_predictions(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    editor.edit([PM, RIVER])
    queries = ["Who is the UK's prime minister?", "What is 2+2?", "Longest river of Africa?"]
    before = editor.predict(queries)
    editor.save(tmp_path / "editor")
    loaded = SeracEditor.load(tmp_path / "editor", base=CallableBaseModel(base_answers), device="cpu")
    assert loaded.predict(queries) == before
    meta = json.loads((tmp_path / "editor" / "editor.json").read_text())
    assert meta["memory"]["version"] == editor.memory.version and "torch" in meta["versions"]


def test_load_errors_name_the_file(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    editor.save(tmp_path / "editor")
    with pytest.raises(ArtifactError, match="editor.json"):
        SeracEditor.load(tmp_path / "nowhere")
    meta_path = tmp_path / "editor" / "editor.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ArtifactVersionError, match="format version 99"):
        SeracEditor.load(tmp_path / "editor", base=CallableBaseModel(base_answers))
    meta_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt JSON"):
        SeracEditor.load(tmp_path / "editor", base=CallableBaseModel(base_answers))
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "editor" / "counterfactual" / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ArtifactError, match="model.safetensors"):
        SeracEditor.load(tmp_path / "editor", base=CallableBaseModel(base_answers))


def test_retrained_scope_triggers_reembedding(tmp_path, scope):
    import torch

    editor = make_editor(tmp_path, scope)
    editor.edit([PM])
    old = editor.memory.encoder_fingerprint
    clone = ScopeClassifier.from_config(ScopeConfig())
    with torch.no_grad():
        next(clone.embedding.encoder.parameters()).add_(0.01)
    rebuilt = SeracEditor(clone, editor.counterfactual, editor.base, editor.memory, editor.config)
    assert rebuilt.memory.encoder_fingerprint == clone.encoder_fingerprint() != old
    assert rebuilt.predict([PM.edit_input])[0].edit_id == PM.edit_id
