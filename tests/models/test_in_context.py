"""The in-context counterfactual model: the base LM with the edit written into its prompt."""

from __future__ import annotations

import pytest
import torch
from tiny import save_tiny_llama

from serac.models.causal_lm import CausalLMBase
from serac.models.in_context import InContextCounterfactual


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    return CausalLMBase.from_pretrained(str(folder), torch.device("cpu"), max_new_tokens=5, answer_extraction="full")


def test_the_edit_and_the_query_are_in_the_chat_prompt(lm):
    ic = InContextCounterfactual(lm, "Fact: {edit_input} {edit_label}. Q: {query}")
    [text] = ic.format_inputs(["Who is the UK PM?"], ["Boris Johnson"], ["Who leads the UK?"])
    assert text == "Fact: Who is the UK PM? Boris Johnson. Q: Who leads the UK?"
    assert lm.prompt(text) == f"[user] {text} [assistant]"


def test_answers_are_the_base_lms_continuations_of_that_prompt(lm):
    ic = InContextCounterfactual(lm, "Fact: {edit_input} {edit_label}. Q: {query}")
    edits = (["Who is the UK PM?", "The Space Needle is in"], ["Boris Johnson", "Paris"])
    queries = ["Who leads the UK?", "Where is the Space Needle?"]
    answers = ic.answer(*edits, queries)
    expected = lm.predict(ic.format_inputs(*edits, queries))
    assert answers == expected


def test_bad_templates_and_lengths_are_refused(lm):
    with pytest.raises(ValueError, match="unknown field"):
        InContextCounterfactual(lm, "{edit_input} {secret} {query}")
    with pytest.raises(ValueError, match="must contain"):
        InContextCounterfactual(lm, "{edit_input} {edit_label}")
    with pytest.raises(ValueError, match="different lengths"):
        InContextCounterfactual(lm).answer(["a"], ["b", "c"], ["q"])


def test_describe_names_no_weights_only_the_base(lm):
    info = InContextCounterfactual(lm).describe()
    assert info["kind"] == "in_context" and info["base"] == lm.describe()
    assert "{query}" in info["template"]
