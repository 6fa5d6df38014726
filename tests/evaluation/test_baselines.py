"""Baselines: the base model alone, lookup (real MiniLM encoder), fine-tuning (tiny seq2seq),
all run by the k-edits protocol and reported like SERAC."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_seq2seq

from serac.config import EditorConfig, EvaluationConfig, MemoryConfig, ScopeConfig
from serac.data.schema import EditRecord, Example
from serac.data.synthetic import synthetic_edits
from serac.editor import SeracEditor
from serac.evaluation.baselines import (
    FineTuneEditor,
    LookupEditor,
    baseline_methods,
    evaluate_all,
    finetune_method,
    lookup_method,
    unedited_method,
)
from serac.evaluation.protocol import ProtocolOptions, evaluate_editor
from serac.memory import EditMemory
from serac.metrics import exact_match
from serac.models.base import CallableBaseModel, HFBaseModel
from serac.models.encoder import TextEncoder
from serac.models.scope import ScopeClassifier

BASE = CallableBaseModel(lambda qs: ["base:" + q for q in qs])

PM = EditRecord("qa", "Who is the prime minister of the United Kingdom?", "Boris Johnson",
                in_scope=[Example("Who is the UK's prime minister?", "Boris Johnson")],
                out_of_scope=[Example("How do I bake banana bread?", "flour")])

QUIET = ProtocolOptions(progress=False)


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.from_pretrained("minilm")


def test_lookup_answers_an_exact_duplicate_with_the_stored_label_and_the_rest_with_the_base(tmp_path, encoder):
    lu = LookupEditor(encoder, BASE, EditMemory.open(tmp_path / "lu", MemoryConfig(root=str(tmp_path / "lu"))))
    assert [p.answer for p in lu.predict([PM.edit_input])] == ["base:" + PM.edit_input]  # empty memory
    lu.edit([PM])
    dup, unrelated = lu.predict([PM.edit_input, "How do I bake banana bread?"])
    assert (dup.answer, dup.routed_to, dup.edit_id) == ("Boris Johnson", "counterfactual", PM.edit_id)
    assert dup.score == pytest.approx(1.0, abs=1e-4)
    assert (unrelated.answer, unrelated.routed_to) == ("base:How do I bake banana bread?", "base")
    assert unrelated.score < 0.6 and unrelated.edit_id == PM.edit_id  # nearest edit, below the threshold
    assert lu.predict([]) == []


def test_lookup_through_the_protocol_reports_scope_metrics_on_cosines(encoder):
    records = synthetic_edits(6, seed=2)
    result = evaluate_editor(lookup_method(encoder, BASE, threshold=0.6), records, ks=[1, 3],
                             options=QUIET)
    for m in result.per_k:
        assert m.es_edit == 1.0  # the edit input is its own nearest neighbour, cos 1
        assert m.threshold == 0.6 and 0.0 <= m.recall <= 1.0 and len(m.scores_in) == m.n_queries
        assert max(m.scores_in) == pytest.approx(1.0, abs=1e-4)


def test_unedited_base_has_zero_drawdown_and_es_of_the_labels_it_already_knows():
    known = {PM.edit_input: "Boris Johnson"}
    base = CallableBaseModel(lambda qs: [known.get(q, "?") for q in qs])
    result = evaluate_editor(unedited_method(base), [PM], ks=[1], options=QUIET)
    m = result.at(1)
    assert (m.es_edit, m.es_rephrase, m.es, m.dd) == (1.0, 0.0, 0.5, 0.0)
    assert m.recall != m.recall  # NaN: the base model has no scope


@pytest.fixture()
def tiny_base() -> HFBaseModel:
    return HFBaseModel(tiny_seq2seq(max_new_tokens=4), name_or_path="tiny", batch_size=8)


def test_fine_tuning_learns_the_edit_on_a_copy_and_leaves_the_base_untouched(tiny_base):
    record = EditRecord("qa", "What is the capital of Varnol?", "Lisbon")
    before = tiny_base.predict([record.edit_input])[0]
    weights = {k: v.clone() for k, v in tiny_base.text_to_text.state_dict().items()}
    assert not exact_match(before, record.edit_label)
    ft = FineTuneEditor(tiny_base, steps=15, lr=1e-2)
    losses = ft.edit([record])
    assert len(losses) == 15 and losses[-1] < losses[0]
    assert exact_match(ft.predict([record.edit_input])[0].answer, "Lisbon")
    assert tiny_base.predict([record.edit_input]) == [before]
    after = tiny_base.text_to_text.state_dict()
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert not any(p.requires_grad for p in tiny_base.text_to_text.parameters())
    assert ft.model.text_to_text.tokenizer is tiny_base.text_to_text.tokenizer  # shared, not copied


def test_fine_tuning_runs_through_the_protocol_and_is_skipped_for_a_non_hf_base(tiny_base):
    record = EditRecord("qa", "What is the capital of Varnol?", "Lisbon",
                        in_scope=[Example("Varnol has which capital?", "Lisbon")])
    result = evaluate_editor(finetune_method(tiny_base, steps=15, lr=1e-2), [record], ks=[1], options=QUIET)
    assert result.at(1).es_edit == 1.0 and not result.skipped
    skipped = evaluate_editor(finetune_method(BASE), [record], ks=[1], options=QUIET)
    assert skipped.skipped and "HFBaseModel" in skipped.note and "callable" in skipped.note


def test_baseline_methods_follow_the_config(encoder):
    cfg = EvaluationConfig(baselines=("ft", "unedited", "lu"), lu_threshold=0.7)
    specs = baseline_methods(BASE, cfg, encoder=encoder)
    assert [s.name for s in specs] == ["ft", "unedited", "lu"]
    assert specs[0].skip_reason and specs[2].threshold == 0.7
    with pytest.raises(ValueError, match="encoder"):
        baseline_methods(BASE, EvaluationConfig(baselines=("lu",)))


class EchoCounterfactual:
    def answer(self, edit_inputs, edit_labels, queries, batch_size=32):
        return list(edit_labels)


def test_evaluate_all_runs_serac_and_every_baseline_on_the_same_groups(tmp_path, encoder):
    scope = ScopeClassifier.from_config(ScopeConfig())
    memory = EditMemory.open(tmp_path / "memory", MemoryConfig(root=str(tmp_path / "memory")))
    editor = SeracEditor(scope, EchoCounterfactual(), BASE, memory, EditorConfig(threshold=0.5, device="cpu"))
    cfg = EvaluationConfig(ks=(1, 4), seed=3, max_groups_per_k=2)
    results = evaluate_all(editor, synthetic_edits(8, seed=5), cfg, encoder=encoder, progress=False)
    assert [r.method for r in results] == ["serac", "unedited", "lu", "ft"]
    serac, unedited, lu, ft = results
    assert ft.skipped and not serac.skipped
    assert [m.n_groups for m in serac.per_k] == [2, 2]  # k=1 has 8 possible groups: max_groups_per_k bounds it
    for r in (serac, unedited, lu):
        assert [(m.k, m.n_groups, m.n_queries) for m in r.per_k] == [(m.k, m.n_groups, m.n_queries)
                                                                     for m in serac.per_k]
    assert all(m.dd == 0.0 and m.es == 0.0 for m in unedited.per_k)
    assert all(m.es_edit == 1.0 for m in serac.per_k + lu.per_k)


# ------------------------------------------------------------------ FT of a causal base LM (LoRA)


@pytest.fixture(scope="module")
def causal_base(tmp_path_factory):
    from tiny import save_tiny_llama

    from serac.config import BaseModelConfig
    from serac.models.base import build_base_model

    llama = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    return build_base_model(BaseModelConfig(kind="causal", name_or_path=str(llama), max_new_tokens=6,
                                            answer_extraction="full"), "cpu")


def test_causal_fine_tuning_trains_lora_on_a_copy_with_the_bases_prompts(causal_base, tmp_path):
    from serac.evaluation.baselines import LoRAFineTuneEditor
    from serac.models.answer_cache import CachedBaseModel

    record = EditRecord("qa", "What is the capital of Varnol?", "Lisbon")
    before = causal_base.predict([record.edit_input, "Why is the sky blue?"])
    weights = {k: v.clone() for k, v in causal_base.model.state_dict().items()}
    assert not exact_match(before[0], record.edit_label)
    ft = LoRAFineTuneEditor(causal_base, steps=100, lr=2e-2)
    losses = ft.edit([record])
    # a random 2-layer Llama's logits stay near uniform (final norm, small head): the loss drops a
    # little, the greedy answer becomes the label
    assert len(losses) == 100 and losses[-1] < losses[0] - 0.3
    assert exact_match(ft.predict([record.edit_input])[0].answer, "Lisbon")
    assert causal_base.predict([record.edit_input, "Why is the sky blue?"]) == before  # the base is untouched
    assert all(torch.equal(weights[k], v) for k, v in causal_base.model.state_dict().items())
    assert not any("lora_" in k for k in ft.model.model.state_dict())  # adapters merged into the copy
    # the protocol finds the causal LM behind the answer cache: FT runs instead of being skipped
    spec = finetune_method(CachedBaseModel(causal_base, tmp_path / "cache"), steps=2)
    assert spec.factory is not None and spec.skip_reason is None
