"""Training examples every task starts from (pure functions of edit records, no models).

- Counterfactual model: (edit, in-scope query) -> in-scope label, trained by NLL.
- Offline base model: the pre-edit beliefs: edit input and rephrasings ->
  ground truth, out-of-scope inputs -> their labels.

A task's :class:`~serac.tasks.spec.TaskSpec` uses them or replaces them (ConvSent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from serac.data.schema import EditRecord


@dataclass(frozen=True)
class CounterfactualExample:
    edit_input: str
    edit_label: str
    query: str
    target: str


def counterfactual_examples(records: Sequence[EditRecord], include_edit_input: bool = True) -> list[CounterfactualExample]:
    """(edit, query) -> target for every labelled in-scope query (and the edit input itself)."""
    out: list[CounterfactualExample] = []
    for rec in records:
        queries = [(rec.edit_input, rec.edit_label)] if include_edit_input else []
        queries += [(e.input, e.label) for e in rec.in_scope if e.label is not None]
        seen: set[str] = set()
        for query, target in queries:
            if query not in seen:
                seen.add(query)
                out.append(CounterfactualExample(rec.edit_input, rec.edit_label, query, target))
    return out


def base_examples(records: Sequence[EditRecord]) -> list[tuple[str, str]]:
    """(query, answer) pairs of the world *before* the edits, for the offline base model."""
    out: dict[str, str] = {}
    for rec in records:
        if rec.ground_truth:
            out.setdefault(rec.edit_input, rec.ground_truth)
            for e in rec.in_scope:
                out.setdefault(e.input, rec.ground_truth)
        for e in rec.out_of_scope:
            if e.label is not None:
                out.setdefault(e.input, e.label)
    return sorted(out.items())
