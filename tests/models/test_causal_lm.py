"""The pretrained causal-LM base model, on a tiny random Llama saved as a local folder."""

from __future__ import annotations

import pytest
import torch
from tiny import save_tiny_llama

from serac.config import BaseModelConfig, ConfigError
from serac.models.base import build_base_model
from serac.models.causal_lm import CausalLMBase, extract_answer


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("  Paris.\nIt is in France.", "first_line", "Paris."),
        ("\n\nBoris Johnson is the PM. He was elected in 2019.", "first_sentence", "Boris Johnson is the PM."),
        ("Rome\nItaly", "full", "Rome\nItaly"),
        ("", "first_sentence", ""),
    ],
)
def test_extract_answer(text, mode, expected):
    assert extract_answer(text, mode) == expected


def test_unknown_settings_are_refused(llama_dir):
    with pytest.raises(ValueError, match="answer_extraction"):
        extract_answer("x", "first_word")
    with pytest.raises(ConfigError, match="base.chat_template"):
        BaseModelConfig(kind="causal", chat_template="sometimes")
    with pytest.raises(ConfigError, match="base.answer_extraction"):
        BaseModelConfig(kind="causal", answer_extraction="last_line")


def test_chat_template_is_used_when_the_tokenizer_has_one(llama_dir, tmp_path):
    base = CausalLMBase.from_pretrained(str(llama_dir), torch.device("cpu"), system_prompt="Be brief.")
    assert base.uses_chat_template
    assert base.prompt("Who is the PM?") == "[system] Be brief. [user] Who is the PM? [assistant]"
    never = CausalLMBase.from_pretrained(str(llama_dir), torch.device("cpu"), chat_template="never")
    assert never.prompt("Who is the PM?") == "Who is the PM?"
    plain = CausalLMBase.from_pretrained(str(save_tiny_llama(tmp_path / "plain", chat_template=None)), torch.device("cpu"))
    assert not plain.uses_chat_template and plain.prompt("q") == "q"


def test_batched_left_padded_answers_equal_one_by_one(llama_dir):
    base = CausalLMBase.from_pretrained(str(llama_dir), torch.device("cpu"), max_new_tokens=6, answer_extraction="full")
    queries = ["Who is the prime minister of the United Kingdom?", "Why?", "What team does Messi play for today?"]
    batched = base.predict(queries)
    assert batched == [base.predict([q])[0] for q in queries]
    assert all(isinstance(a, str) for a in batched)
    assert base.predict(queries) == batched  # greedy: deterministic


def test_frozen_and_rebuilt_from_its_description(llama_dir):
    cfg = BaseModelConfig(kind="causal", name_or_path=str(llama_dir), max_new_tokens=5, answer_extraction="full")
    base = build_base_model(cfg, "cpu")
    assert isinstance(base, CausalLMBase)
    assert not any(p.requires_grad for p in base.model.parameters())
    described = base.describe()
    assert described["kind"] == "causal" and described["name_or_path"] == str(llama_dir)
    rebuilt = build_base_model(
        BaseModelConfig(**{k: v for k, v in described.items() if k in BaseModelConfig.__dataclass_fields__}), "cpu"
    )
    queries = ["Who is the PM?", "Where is the Space Needle?"]
    assert rebuilt.predict(queries) == base.predict(queries)


def test_unknown_name_without_hub_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="not a local path"):
        CausalLMBase.from_pretrained("no-such-model", torch.device("cpu"))
