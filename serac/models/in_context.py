"""The in-context counterfactual model: the frozen base LM answers with the edit in its prompt.

No training and no weights of its own: the in-scope query and the retrieved edit
are written into one prompt by ``template`` (fields ``edit_input``,
``edit_label``, ``query``), the base LM's chat template wraps it, and the base
LM's greedy continuation is the answer. This is the variant that can combine an
edit with what the base model already knows (portability questions); with a
small base model it follows the edit less reliably than a trained
counterfactual model, which is why it is measured beside it rather than the
default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from serac.models.causal_lm import CausalLMBase, extract_answer
from serac.models.counterfactual import check_template, fill_template

KIND = "in_context"
DEFAULT_TEMPLATE = (
    "Use this updated fact, even where it contradicts what you know.\n"
    "Updated fact: {edit_input} {edit_label}\n"
    "Question: {query}\n"
    "Answer in a few words."
)


class InContextCounterfactual:
    """Answers ``(edit input, edit label, query)`` triples with a frozen :class:`CausalLMBase`."""

    kind = KIND

    def __init__(self, lm: CausalLMBase, template: str = DEFAULT_TEMPLATE) -> None:
        self.lm = lm
        self.template = check_template(template)

    def format_inputs(
        self, edit_inputs: Sequence[str], edit_labels: Sequence[str], queries: Sequence[str]
    ) -> list[str]:
        return fill_template(self.template, edit_inputs, edit_labels, queries)

    def answer(
        self,
        edit_inputs: Sequence[str],
        edit_labels: Sequence[str],
        queries: Sequence[str],
        batch_size: int | None = None,
    ) -> list[str]:
        """The base LM's answers with each query's edit in the prompt (``batch_size``: the LM's own)."""
        prompts = [self.lm.prompt(text) for text in self.format_inputs(edit_inputs, edit_labels, queries)]
        return [extract_answer(t, self.lm.answer_extraction) for t in self.lm.generate(prompts)]

    def describe(self) -> dict[str, Any]:
        """No weights: the kind, the template and the base LM it runs on."""
        return {"kind": KIND, "template": self.template, "base": self.lm.describe()}
