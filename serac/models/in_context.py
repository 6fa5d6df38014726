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
from pathlib import Path
from typing import Any

import torch

from serac.config import CounterfactualConfig
from serac.io import atomic_dir
from serac.models.artifacts import ArtifactError, read_artifact_info, write_artifact_config
from serac.models.causal_lm import CausalLMBase, extract_answer, unwrap_causal_lm
from serac.models.counterfactual import ARTIFACT_KIND, CounterfactualModel, check_template, fill_template

KIND = "in_context"
DEFAULT_TEMPLATE = (
    "Assume this is true: {edit_input} {edit_label}.\n"
    "Question: {query}\n"
    "Reply with just the answer."
)
"""Chosen on five hand-written edits with SmolLM2-135M-Instruct (none from a test split): it took
the edit's label in 4 of 5 answers, the earlier "Updated fact: ..." prompt in 2 of 5."""


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

    def save(self, directory: str | Path) -> Path:
        """``config.json`` alone (kind and template): the LM is the editor's base model, saved by reference."""
        return save_in_context(directory, self.template)


def save_in_context(directory: str | Path, template: str = DEFAULT_TEMPLATE) -> Path:
    """Write an ``in_context`` counterfactual artifact (what training leaves for this kind: nothing to train)."""
    check_template(template)
    with atomic_dir(directory) as tmp:
        write_artifact_config(tmp, kind=ARTIFACT_KIND, config={"kind": KIND, "extra": {"template": template}})
    return Path(directory)


def template_of(cfg: CounterfactualConfig) -> str:
    return cfg.in_context_template or DEFAULT_TEMPLATE


def causal_lm_of(base: Any, where: str) -> CausalLMBase:
    """The :class:`CausalLMBase` behind ``base`` (through wrappers such as the answer cache, which
    keep the wrapped model as ``.base``); ArtifactError when the base is not a causal LM."""
    seen = unwrap_causal_lm(base)
    if seen is None:
        kind = base.describe().get("kind") if hasattr(base, "describe") else type(base).__name__
        raise ArtifactError(f"{where}: the in_context counterfactual model answers with the base LM, which must "
                            f"be a causal LM (base.kind: causal); this base is {kind!r}")
    return seen


def load_counterfactual(
    directory: str | Path, device: str | torch.device, base: Any
) -> CounterfactualModel | InContextCounterfactual:
    """The counterfactual model saved in ``directory``: trained weights, or ``in_context`` on ``base``."""
    info = read_artifact_info(directory, ARTIFACT_KIND)
    if info.config.get("kind") != KIND:
        return CounterfactualModel.load(directory, device=device)
    where = str(info.path / "config.json")
    template = (info.config.get("extra") or {}).get("template")
    if not isinstance(template, str):
        raise ArtifactError(f"{where}: missing the in_context template")
    try:
        return InContextCounterfactual(causal_lm_of(base, where), template)
    except ValueError as exc:
        raise ArtifactError(f"{where}: {exc}") from exc
