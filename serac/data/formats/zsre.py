"""MEND's zsRE question-answering edits (format ``zsre_mend``)."""

from __future__ import annotations

from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.schema import Example

NQ_PREFIX = "nq question: "
"""Prefix of the Natural Questions locality questions in MEND's zsRE files."""


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """MEND zsRE: the edit installs ``alt`` as the answer to ``src``.

    in_scope is the rephrased question only (the edit input itself is evaluated
    separately); out_of_scope is the NQ question without its ``nq question:``
    prefix. ``pred``, ``cond`` and ``portability`` are not mapped.
    """
    src, alt, rephrase = r.text("src"), r.text("alt"), r.text("rephrase")
    subject, loc, loc_ans = r.text("subject"), r.text("loc"), r.text("loc_ans")
    answers = r.texts("answers", nonempty=True)
    question = loc.removeprefix(NQ_PREFIX).strip() if loc else None
    if loc and not question:
        r.add("empty_field", "loc")
    if r.reasons:
        return None
    return dict(
        edit_input=src,
        edit_label=alt,
        subject=subject,
        ground_truth=answers[0],
        in_scope=[Example(rephrase, alt)],
        out_of_scope=[Example(question, loc_ans)],
    )


SPECS = (
    spec("zsre_mend", "subject src rephrase alt answers loc loc_ans", "qa", convert, optional="pred cond portability"),
)
