"""The causal_lora kind: frozen pretrained causal LM + trained LoRA adapters, saved as adapters only."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny_llama

from serac.config import CounterfactualConfig
from serac.models.artifacts import ArtifactError
from serac.models.counterfactual import CounterfactualModel
from serac.models.seq2seq import TextToText


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def lora(llama_dir) -> TextToText:
    torch.manual_seed(0)
    return TextToText.from_pretrained("causal_lora", str(llama_dir), max_new_tokens=4)


def test_only_the_adapters_train(llama_dir):
    t2t = lora(llama_dir)
    trainable = [n for n, p in t2t.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in t2t.model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in t2t.parameters() if p.requires_grad], lr=1e-2)
    t2t.train()
    inputs, targets = ["Who is the UK PM? Boris Johnson [SEP] Who leads the UK?"] * 4, ["boris johnson"] * 4
    first = t2t.loss(inputs, targets).item()
    for _ in range(15):
        opt.zero_grad()
        t2t.loss(inputs, targets).backward()
        opt.step()
    assert t2t.loss(inputs, targets).item() < first
    assert all(torch.equal(p, frozen[n]) for n, p in t2t.model.named_parameters() if not p.requires_grad)


def test_saved_as_adapters_plus_a_reference_and_reloaded_exactly(llama_dir, tmp_path):
    t2t = lora(llama_dir)
    with torch.no_grad():  # non-zero adapters, so that a reload that dropped them would show
        for name, p in t2t.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model = CounterfactualModel(t2t, CounterfactualConfig.template)
    model.save(tmp_path / "cf")
    config = json.loads((tmp_path / "cf" / "config.json").read_text())["config"]
    assert config["base_model"] == {"name_or_path": str(llama_dir), "revision": None}
    base_bytes = sum(f.stat().st_size for f in llama_dir.glob("*.safetensors"))
    assert (tmp_path / "cf" / "model.safetensors").stat().st_size < base_bytes / 2
    loaded = CounterfactualModel.load(tmp_path / "cf")
    assert loaded.kind == "causal_lora"
    args = (["Who is the UK PM?", "Space Needle is in"], ["Boris Johnson", "Paris"], ["Who leads the UK?", "Where?"])
    assert loaded.answer(*args) == model.answer(*args)
    plain = TextToText.from_pretrained("causal", str(llama_dir), max_new_tokens=4)
    assert plain.generate(model.format_inputs(*args)) != t2t.generate(model.format_inputs(*args))


def test_a_missing_base_or_foreign_adapter_is_a_clear_error(llama_dir, tmp_path):
    lora(llama_dir).save(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "config.json").read_text())
    meta["config"]["base_model"] = {"name_or_path": str(tmp_path / "gone"), "revision": None}
    (tmp_path / "a" / "config.json").write_text(json.dumps(meta))
    with pytest.raises((ArtifactError, FileNotFoundError), match="gone"):
        TextToText.load(tmp_path / "a")
    other = save_tiny_llama(tmp_path / "other", seed=1)
    from transformers import LlamaConfig, LlamaForCausalLM

    bigger = LlamaConfig.from_pretrained(other)
    bigger.hidden_size, bigger.intermediate_size = 64, 128
    LlamaForCausalLM(bigger).save_pretrained(other)
    meta["config"]["base_model"] = {"name_or_path": str(other), "revision": None}
    (tmp_path / "a" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="adapter weights do not fit"):
        TextToText.load(tmp_path / "a")
