"""Counterfactual variants with weights (``causal_lora``): trained beside the counterfactual model into
``work_dir/variants/<kind>``, reused on a rerun, loaded back for evaluation; never guessed when absent."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tiny import save_tiny_llama

from serac.config import EvaluationConfig, ProjectConfig, TrainConfig, TrainingConfig
from serac.config.errors import ConfigError
from serac.data.synthetic import synthetic_edits
from serac.editor.workdir import load_variants, trained_variants, variant_config
from serac.models.artifacts import ArtifactError
from serac.models.lora import DEFAULT_TEMPLATE
from serac.training.editor import train_variants

STEPS = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, eval_every=1000, checkpoint_every=1000)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def lora_config(llama_dir, variants=("causal_lora",)) -> ProjectConfig:
    cfg = ProjectConfig()
    return replace(
        cfg,
        counterfactual=replace(cfg.counterfactual, kind="seq2seq_copy", lora_name_or_path=str(llama_dir),
                               max_new_tokens=3),
        editor=replace(cfg.editor, device="cpu"),
        training=TrainingConfig(counterfactual=STEPS, causal_lora=STEPS, label_swap_copies=1),
        evaluation=replace(cfg.evaluation, counterfactual_variants=variants),
    )


def test_causal_lora_trains_as_adapters_on_its_lm_and_is_reused(tmp_path, llama_dir):
    config = lora_config(llama_dir)
    records = synthetic_edits(10, seed=2)
    first = train_variants(config, records[:8], records[8:], tmp_path)
    assert first["variant_causal_lora"].steps == 2
    saved = json.loads((tmp_path / "variants" / "causal_lora" / "config.json").read_text())["config"]
    assert saved["kind"] == "causal_lora" and saved["base_model"]["name_or_path"] == str(llama_dir)
    assert json.loads((tmp_path / "variants" / "variants.json").read_text()) == {"trained": ["causal_lora"]}
    assert not (tmp_path / "counterfactual").exists()  # the editor's own counterfactual model is another step
    assert train_variants(config, records[:8], records[8:], tmp_path) == {"variant_causal_lora": None}

    loaded = load_variants(config, tmp_path, base=None)
    model = loaded["serac_causal_lora"]
    assert list(loaded) == ["serac_causal_lora"] and model.kind == "causal_lora"
    assert model.template == DEFAULT_TEMPLATE
    r = records[0]
    answers = model.answer([r.edit_input] * 2, [r.edit_label] * 2, [r.in_scope[0].input, "Unrelated?"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_no_variant_is_trained_by_default_and_an_untrained_one_is_a_clear_error(tmp_path, llama_dir):
    config = lora_config(llama_dir, variants=())
    records = synthetic_edits(4, seed=3)
    assert trained_variants(config) == () and train_variants(config, records, [], tmp_path) == {}
    assert json.loads((tmp_path / "variants" / "variants.json").read_text()) == {"trained": []}
    assert load_variants(config, tmp_path, base=None) == {}
    with pytest.raises(ArtifactError, match="serac train --component variants"):
        load_variants(lora_config(llama_dir), tmp_path, base=None)


def test_the_variants_lm_is_the_causal_base_unless_named(llama_dir):
    plain = ProjectConfig()
    assert plain.base.kind != "causal" and variant_config(plain, "causal_lora").name_or_path == "smollm2"
    causal = replace(plain, base=replace(plain.base, kind="causal", name_or_path="/models/qwen"))
    cf = variant_config(causal, "causal_lora")
    assert (cf.kind, cf.name_or_path, cf.template) == ("causal_lora", "/models/qwen", DEFAULT_TEMPLATE)
    assert cf.max_input_length == plain.counterfactual.max_input_length
    named = replace(causal, counterfactual=replace(causal.counterfactual, lora_name_or_path=str(llama_dir),
                                                   lora_template="{edit_label}: {query} ="))
    assert variant_config(named, "causal_lora").name_or_path == str(llama_dir)
    assert variant_config(named, "causal_lora").template == "{edit_label}: {query} ="
    with pytest.raises(ValueError, match="not a trained counterfactual variant"):
        variant_config(plain, "in_context")
    assert EvaluationConfig(counterfactual_variants=("in_context", "causal_lora")).counterfactual_variants
    with pytest.raises(ConfigError, match="causal_lora"):
        EvaluationConfig(counterfactual_variants=("lora",))
