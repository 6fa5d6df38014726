"""CounterFact counterfactual-fact edits: EasyEdit's split and ROME's ``counterfact.json``."""

from __future__ import annotations

from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.schema import Example


def convert_easyedit(r: Row, ctx: Context) -> dict[str, Any] | None:
    """EasyEdit's CounterFact split: one rephrase and one locality prompt per case."""
    _case_id(r)
    prompt, target, subject = r.text("prompt"), r.text("target_new"), r.text("subject")
    truth, rephrase = r.text("ground_truth"), r.text("rephrase_prompt")
    loc, loc_truth = r.text("locality_prompt"), r.text("locality_ground_truth")
    if r.reasons:
        return None
    return dict(
        edit_input=prompt,
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=[Example(rephrase, target)],
        out_of_scope=[Example(loc, loc_truth)],
    )


def convert_rome(r: Row, ctx: Context) -> dict[str, Any] | None:
    """ROME's counterfact.json: ``requested_rewrite.prompt`` has a ``{}`` for the subject.

    Neighbourhood prompts are labelled with ``target_true`` (they share its
    true object); attribute and generation prompts are not mapped.
    """
    _case_id(r)
    rewrite = r.child("requested_rewrite")
    paraphrases = r.texts("paraphrase_prompts")
    neighbours = r.texts("neighborhood_prompts")
    if rewrite is None:
        return None
    template, subject = rewrite.text("prompt"), rewrite.text("subject")
    new, true = rewrite.child("target_new"), rewrite.child("target_true")
    target = new.text("str") if new else None
    truth = true.text("str") if true else None
    if template and "{}" not in template:
        rewrite.add("invalid_value", "prompt")
    if r.reasons:
        return None
    return dict(
        edit_input=template.replace("{}", subject, 1),
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=[Example(p, target) for p in paraphrases],
        out_of_scope=[Example(p, truth) for p in neighbours],
    )


def _case_id(r: Row) -> None:
    value = r.value("case_id")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, str) and value.strip().isdigit()):
            r.add("wrong_type", "case_id")


SPECS = (
    spec("counterfact_easyedit",
         "case_id prompt target_new subject ground_truth rephrase_prompt locality_prompt locality_ground_truth",
         "fact", convert_easyedit),
    spec("counterfact_rome", "case_id requested_rewrite paraphrase_prompts neighborhood_prompts", "fact",
         convert_rome, optional="pararel_idx attribute_prompts generation_prompts"),
)
