"""KnowEdit's fact edits (wiki_counterfact, wiki_recent, ZsRE; format ``knowedit``)."""

from __future__ import annotations

from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.schema import Example


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """KnowEdit: locality is ``{kind: [{prompt, ground_truth}]}``.

    A ground truth may be a string, a list of aliases or a list of alias lists
    (the first alias is used), and is absent in wiki_recent (knowledge
    insertion). Every locality probe becomes an out-of-scope example. Portability
    probes are not mapped (their answers are multi-hop consequences, not the
    edit's label).
    """
    prompt, target, subject = r.text("prompt"), r.text("target_new"), r.text("subject")
    truth = _first_alias(r, "ground_truth")
    in_scope = [Example(p, target) for p in r.texts("rephrase_prompt", required=False, scalar_ok=True)]
    out_of_scope = _locality(r)
    if r.reasons:
        return None
    return dict(
        edit_input=prompt,
        edit_label=target,
        subject=subject,
        ground_truth=truth,
        in_scope=in_scope,
        out_of_scope=out_of_scope,
    )


def _locality(r: Row) -> list[Example]:
    """Locality probes; a probe's prompt may be a list, with one ground truth per prompt."""
    locality = r.value("locality", required=False)
    if locality is None:
        return []
    if not isinstance(locality, dict) or not all(isinstance(v, list) for v in locality.values()):
        r.add("wrong_type", "locality")
        return []
    examples: list[Example] = []
    for kind, probes in locality.items():
        for probe in probes:
            if not isinstance(probe, dict):
                r.add("wrong_type", f"locality.{kind}")
                continue
            p = Row(probe, r.reasons, prefix=f"locality.{kind}.")
            prompts = p.texts("prompt", nonempty=True, scalar_ok=True)
            truths = probe.get("ground_truth")
            if len(prompts) > 1 and isinstance(truths, list) and len(truths) == len(prompts):
                labels = [_alias(t) for t in truths]
            else:
                labels = [_first_alias(p, "ground_truth")] * len(prompts)
            examples += [Example(q, a if isinstance(a, str) and a.strip() else None) for q, a in zip(prompts, labels)]
    return examples


def _alias(value: Any) -> Any:
    """The first item of (nested) alias lists: ``[["Berlin", "DE-BE"]]`` -> ``"Berlin"``, ``[]`` -> None."""
    while isinstance(value, list):
        value = value[0] if value else None
    return value


def _first_alias(r: Row, name: str) -> str | None:
    """An optional answer given as a string or as (nested) alias lists; blank -> None."""
    value = _alias(r.value(name, required=False))
    if value is not None and not isinstance(value, str):
        r.add("wrong_type", name)
        return None
    return value if value and value.strip() else None


SPECS = (
    spec("knowedit", "subject prompt target_new", "fact", convert,
         optional="ground_truth rephrase_prompt portability locality cond"),
)
