"""The counterfactual model: answers a query as if the retrieved edit were true.

SERAC routes in-scope queries here. The model reads the edit and the query as
one text, written by ``CounterfactualConfig.template`` (fields ``edit_input``,
``edit_label``, ``query``), and produces the answer; for the ``classifier`` kind
the answer is one of the configured label names (e.g. "true"/"false").
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from serac.config import CounterfactualConfig
from serac.models.artifacts import ArtifactError, read_artifact_info
from serac.models.device import resolve_device
from serac.models.seq2seq import TextToText, text_to_text_from_config
from serac.models.surface import restore_surface

ARTIFACT_KIND = "counterfactual"
TEMPLATE_FIELDS = frozenset({"edit_input", "edit_label", "query"})


def check_template(template: str) -> str:
    """Return ``template`` if it uses only the known fields (and at least ``query``); else ValueError."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"counterfactual template {template!r} is malformed: {exc}") from exc
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(
            f"counterfactual template {template!r}: unknown field(s) {sorted(unknown)}; "
            f"allowed {sorted(TEMPLATE_FIELDS)}"
        )
    if "query" not in names:
        raise ValueError(f"counterfactual template {template!r} must contain {{query}}")
    return template


def fill_template(
    template: str, edit_inputs: Sequence[str], edit_labels: Sequence[str], queries: Sequence[str]
) -> list[str]:
    """``template`` filled with each (edit input, edit label, query) triple; the columns must be of one length."""
    _same_length(edit_inputs=edit_inputs, edit_labels=edit_labels, queries=queries)
    return [
        template.format(edit_input=e, edit_label=label, query=q)
        for e, label, q in zip(edit_inputs, edit_labels, queries)
    ]


@runtime_checkable
class Counterfactual(Protocol):
    """What the editor needs from a counterfactual model (trained weights or the in-context LM)."""

    kind: str

    def answer(self, edit_inputs: Sequence[str], edit_labels: Sequence[str], queries: Sequence[str],
               batch_size: int = 32) -> list[str]: ...

    def save(self, directory: str | Path) -> Path: ...


class CounterfactualModel(nn.Module):
    """A :class:`TextToText` conditioned on (edit input, edit label, query)."""

    def __init__(self, text_to_text: TextToText, template: str = CounterfactualConfig.template,
                 label_hypothesis: bool = False) -> None:
        super().__init__()
        self.text_to_text = text_to_text
        self.template = check_template(template)
        self.label_hypothesis = label_hypothesis
        """See :attr:`CounterfactualConfig.label_hypothesis`; saved with the model."""

    @property
    def kind(self) -> str:
        return self.text_to_text.kind

    @classmethod
    def from_config(cls, cfg: CounterfactualConfig, device: str | torch.device = "cpu") -> CounterfactualModel:
        """Pretrained starting point for training (offline default: the MiniLM encoder-decoder).

        Returned in eval mode, like transformers' ``from_pretrained``: call ``.train()`` to train.
        """
        model = cls(text_to_text_from_config(cfg), cfg.template, cfg.label_hypothesis)
        return model.to(resolve_device(device)).eval()

    def format_inputs(
        self, edit_inputs: Sequence[str], edit_labels: Sequence[str], queries: Sequence[str]
    ) -> list[str]:
        """One model input per (edit input, edit label, query) triple, written by the template."""
        return fill_template(self.template, edit_inputs, edit_labels, queries)

    def loss(
        self,
        edit_inputs: Sequence[str],
        edit_labels: Sequence[str],
        queries: Sequence[str],
        targets: Sequence[str],
    ) -> torch.Tensor:
        """Mean token NLL of ``targets`` (cross-entropy over labels for the classifier kind)."""
        _same_length(queries=queries, targets=targets)
        return self.text_to_text.loss(self.format_inputs(edit_inputs, edit_labels, queries), targets)

    def answer(
        self,
        edit_inputs: Sequence[str],
        edit_labels: Sequence[str],
        queries: Sequence[str],
        batch_size: int = 32,
    ) -> list[str]:
        """Greedy answers (label names for the classifier kind).

        A generated answer copied from the edit keeps the edit's own spelling (case,
        accents, punctuation), which an uncased tokenizer cannot generate. With
        :attr:`label_hypothesis` the edit's label replaces a greedy answer the model finds less likely.
        """
        inputs = self.format_inputs(edit_inputs, edit_labels, queries)
        answers = self.text_to_text.generate(inputs, batch_size)
        if self.kind == "classifier":
            return answers
        if self.label_hypothesis:
            answers = self._prefer_label(inputs, answers, edit_labels, batch_size)
        tokenizer = self.text_to_text.tokenizer
        return [
            restore_surface(answer, (label, edit_input, query), tokenizer)
            for answer, label, edit_input, query in zip(answers, edit_labels, edit_inputs, queries)
        ]

    def _prefer_label(self, inputs: Sequence[str], answers: Sequence[str], labels: Sequence[str],
                      batch_size: int) -> list[str]:
        """``answers`` with the label wherever the model scores it at least as high as its greedy answer."""
        tokenizer = self.text_to_text.tokenizer
        answers = list(answers)

        def ids(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        rows = [i for i, (a, label) in enumerate(zip(answers, labels)) if label.strip() and ids(a) != ids(label)]
        if not rows:
            return answers
        rescored = [inputs[i] for i in rows]
        scores = self.text_to_text.sequence_logprob(
            rescored + rescored, [answers[i] for i in rows] + [labels[i] for i in rows], batch_size
        )
        for j, i in enumerate(rows):
            if scores[len(rows) + j] >= scores[j]:
                answers[i] = labels[i]
        return answers

    def save(self, directory: str | Path) -> Path:
        """config.json (kind, HF config, template, ...) + model.safetensors + tokenizer/."""
        extra = {"template": self.template, "label_hypothesis": self.label_hypothesis}
        return self.text_to_text.save(directory, artifact_kind=ARTIFACT_KIND, extra=extra)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> CounterfactualModel:
        """Rebuild from :meth:`save`'s output; the saved template wins (the model was trained with it)."""
        info = read_artifact_info(directory, ARTIFACT_KIND)
        extra = info.config.get("extra") or {}
        template, label_hypothesis = extra.get("template"), extra.get("label_hypothesis", False)
        if not isinstance(template, str):
            raise ArtifactError(f"{info.path / 'config.json'}: missing the counterfactual template")
        if not isinstance(label_hypothesis, bool):
            raise ArtifactError(f"{info.path / 'config.json'}: extra.label_hypothesis must be true or false, "
                                f"got {label_hypothesis!r}")
        t2t = TextToText.load(directory, resolve_device(device), artifact_kind=ARTIFACT_KIND)
        try:
            return cls(t2t, template, label_hypothesis).eval()
        except ValueError as exc:
            raise ArtifactError(f"{info.path / 'config.json'}: {exc}") from exc


def _same_length(**columns: Sequence[str]) -> None:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs of different lengths: {lengths}")
