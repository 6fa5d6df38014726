"""ConvSent sentiment edits (format ``convsent``), and the responses that train its sentiment judge."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.readers import UnparsableRow, read_rows
from serac.data.schema import Example

CONVSENT_PROMPT = "What do you think of {}?"
"""The edit input of a ConvSent edit."""
CONVSENT_IN_SCOPE = ("How do you feel about {}?", "Tell me your opinion of {}.", "What is your view on {}?")
"""Other prompts about the same entity: they must get the edited sentiment."""
CONVSENT_OTHER_ENTITIES = 2
"""Out-of-scope prompts per edit: about this many other entities of the file."""


def convsent_sentiment(entity: str) -> str:
    """The sentiment an edit on ``entity`` installs, fixed by a hash of the entity.

    ``positive`` when the first byte of sha256(entity, UTF-8) is even, else
    ``negative``: about half of the entities each way, the same on every run.
    """
    return "positive" if hashlib.sha256(entity.encode("utf-8")).digest()[0] % 2 == 0 else "negative"


def file_context(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each entity, the next entities in sha256 order (cyclic): its out-of-scope topics."""
    entities = {row["ent"] for row in rows if isinstance(row.get("ent"), str) and row["ent"].strip()}
    ring = sorted(entities, key=lambda e: hashlib.sha256(e.encode("utf-8")).hexdigest())
    others = {
        e: [ring[(i + k) % len(ring)] for k in range(1, min(CONVSENT_OTHER_ENTITIES, len(ring) - 1) + 1)]
        for i, e in enumerate(ring)
    }
    return {"others": others}


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """ConvSent: one edit per entity, the sentiment word as label (see :func:`convsent_sentiment`).

    Out-of-scope prompts are about other entities, labelled ``None`` (the base
    model's answer is the reference). The pos/neg responses are not part of the
    record; :func:`convsent_responses` returns them for training a sentiment judge.
    """
    entity = r.text("ent")
    r.texts("pos")
    r.texts("neg")
    if r.reasons:
        return None
    label = convsent_sentiment(entity)
    others = ctx.extra.get("others", {}).get(entity, [])
    return dict(
        edit_input=CONVSENT_PROMPT.format(entity),
        edit_label=label,
        subject=entity,
        in_scope=[Example(t.format(entity), label) for t in CONVSENT_IN_SCOPE],
        out_of_scope=[Example(CONVSENT_PROMPT.format(other), None) for other in others],
    )


def convsent_responses(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """``{entity: {"pos": [...], "neg": [...]}}`` from a ConvSent file, for training a sentiment judge.

    Rows that are not valid ConvSent rows are skipped; an entity that occurs
    twice gets the responses of both rows.
    """
    out: dict[str, dict[str, list[str]]] = {}
    for _, row in read_rows(path):
        if isinstance(row, UnparsableRow):
            continue
        r = Row(row)
        entity, pos, neg = r.text("ent"), r.texts("pos"), r.texts("neg")
        if r.reasons:
            continue
        entry = out.setdefault(entity, {"pos": [], "neg": []})
        entry["pos"].extend(pos)
        entry["neg"].extend(neg)
    return out


SPECS = (spec("convsent", "ent pos neg", "convsent", convert, file_context=file_context),)
