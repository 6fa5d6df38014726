"""Locality sets of the evaluation: the dataset's own out-of-scope queries plus same-subject /
other-relation queries built from the held-out edits themselves.

:func:`with_same_subject` mines relation templates from the given (held-out) records only,
with the generator the scope classifier's training uses (:mod:`serac.data.relations`),
and appends up to ``per_edit`` filled templates to each record's ``out_of_scope`` (label
None: DD compares them with the unedited model's answers). Templates of the training
split are never used, so the evaluation's same-subject queries are not the ones trained on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from serac.data.relations import mine_templates, same_subject_queries
from serac.data.schema import EditRecord, Example

SAME_SUBJECT = "same_subject"
"""Locality kind: the edit's subject, another relation ("The Space Needle was designed by")."""


def with_same_subject(
    records: Sequence[EditRecord], per_edit: int, seed: int = 0, template_records: Sequence[EditRecord] | None = None
) -> tuple[list[EditRecord], dict[str, str]]:
    """``records`` with same-subject / other-relation queries added to their out-of-scope examples,
    and the kind of each added query (``{query: "same_subject"}``).

    Templates are mined from ``template_records`` (default: ``records``). A query that is an
    in-scope or edit input of any record is not added (it would not be out of scope there).
    """
    records = list(records)
    if per_edit <= 0 or not records:
        return records, {}
    bank = mine_templates(template_records if template_records is not None else records)
    queries = same_subject_queries(records, bank, per_edit, seed)
    inside = {r.edit_input for r in records} | {e.input for r in records for e in r.in_scope}
    out: list[EditRecord] = []
    kinds: dict[str, str] = {}
    for rec, extra in zip(records, queries):
        existing = {e.input for e in rec.out_of_scope}
        added = [q for q in extra if q not in inside and q not in existing]
        kinds.update((q, SAME_SUBJECT) for q in added)
        out.append(dataclasses.replace(rec, out_of_scope=(*rec.out_of_scope, *(Example(q, None) for q in added)))
                   if added else rec)
    return out, kinds


__all__ = ["SAME_SUBJECT", "with_same_subject"]
