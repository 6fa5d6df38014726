"""An editor whose frozen base is a causal LM (a tiny random Llama saved as a local folder): routing,
the in-context counterfactual model on that LM, and a save/load round trip that references the LM."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny_llama, tiny_counterfactual

from serac.config import BaseModelConfig, EditorConfig, MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord, Example
from serac.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.answer_cache import CachedBaseModel
from serac.models.artifacts import ArtifactError
from serac.models.base import CallableBaseModel, build_base_model
from serac.models.in_context import InContextCounterfactual, load_counterfactual, save_in_context
from serac.models.scope import ScopeClassifier

PM = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")])
UNRELATED = ["What team does Messi play for?", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def scope() -> ScopeClassifier:
    return ScopeClassifier.from_config(ScopeConfig())


def causal_base(llama_dir):
    cfg = BaseModelConfig(kind="causal", name_or_path=str(llama_dir), max_new_tokens=4, answer_extraction="full")
    return build_base_model(cfg, "cpu")


def editor_with(tmp_path, scope, base, counterfactual) -> SeracEditor:
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    return SeracEditor(scope, counterfactual, base, memory, EditorConfig(threshold=0.5, device="cpu"))


def test_unrelated_answers_are_the_lms_own_byte_for_byte(tmp_path, scope, llama_dir):
    base = causal_base(llama_dir)
    unedited = base.predict(UNRELATED)
    editor = editor_with(tmp_path, scope, base, tiny_counterfactual())
    editor.edit([PM])
    preds = editor.predict(["Who is the UK's prime minister?", *UNRELATED])
    assert preds[0].routed_to == "counterfactual"
    assert [p.routed_to for p in preds[1:]] == ["base", "base"]
    assert [p.answer for p in preds[1:]] == unedited


def test_in_context_answers_come_from_the_lm_prompted_with_the_edit(tmp_path, scope, llama_dir):
    base = causal_base(llama_dir)
    ic = InContextCounterfactual(base, "Fact: {edit_input} {edit_label}\nQ: {query}")
    editor = editor_with(tmp_path, scope, base, ic)
    editor.edit([PM])
    [pred] = editor.predict(["Who is the UK's prime minister?"])
    assert pred.routed_to == "counterfactual"
    prompt = "Fact: Who is the prime minister of the United Kingdom? Boris Johnson\nQ: Who is the UK's prime minister?"
    assert pred.answer == base.predict([prompt])[0]


def test_saved_editor_references_the_lm_and_reloads_identically(tmp_path, scope, llama_dir):
    base = causal_base(llama_dir)
    editor = editor_with(tmp_path, scope, base, InContextCounterfactual(base))
    editor.edit([PM])
    queries = ["Who is the UK's prime minister?", *UNRELATED]
    before = [p.answer for p in editor.predict(queries)]
    editor.save(tmp_path / "editor")
    meta = json.loads((tmp_path / "editor" / "editor.json").read_text())
    assert meta["base"]["kind"] == "causal" and meta["base"]["saved"] is False  # referenced, never copied
    assert meta["base"]["name_or_path"] == str(llama_dir)
    assert sorted(p.name for p in (tmp_path / "editor" / "counterfactual").iterdir()) == ["config.json"]
    loaded = SeracEditor.load(tmp_path / "editor")
    assert isinstance(loaded.counterfactual, InContextCounterfactual)
    assert [p.answer for p in loaded.predict(queries)] == before


def test_in_context_needs_a_causal_base_and_sees_through_the_answer_cache(tmp_path, llama_dir):
    save_in_context(tmp_path / "cf", "Fact: {edit_input} {edit_label}. {query}")
    with pytest.raises(ArtifactError, match="must be a causal LM"):
        load_counterfactual(tmp_path / "cf", "cpu", CallableBaseModel(lambda qs: qs))
    base = causal_base(llama_dir)
    cf = load_counterfactual(tmp_path / "cf", torch.device("cpu"), CachedBaseModel(base, tmp_path / "cache"))
    assert isinstance(cf, InContextCounterfactual) and cf.lm is base
    with pytest.raises(ValueError, match="must contain"):
        save_in_context(tmp_path / "bad", "{edit_input} {edit_label}")
