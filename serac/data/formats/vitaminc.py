"""VitaminC fact-checking edits (format ``vitaminc``)."""

from __future__ import annotations

import hashlib
from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.schema import Example

VITAMINC_LABELS = {"SUPPORTS": "true", "REFUTES": "false"}
"""VitaminC verdict -> truth value of the claim given the evidence (NOT ENOUGH INFO is rejected)."""
VITAMINC_OTHER_CLAIMS = 2
"""Out-of-scope claims per VitaminC edit: the claims of this many other rows of the file."""


def file_context(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For each claim, the next labelled claims in sha256 order (cyclic), with their truth values."""
    labelled = {row["claim"]: VITAMINC_LABELS[row["label"]] for row in rows
                if isinstance(row.get("claim"), str) and row["claim"].strip() and row.get("label") in VITAMINC_LABELS}
    ring = sorted(labelled, key=lambda c: hashlib.sha256(c.encode("utf-8")).hexdigest())
    n = min(VITAMINC_OTHER_CLAIMS, len(ring) - 1)
    return {"others": {c: [(ring[(i + k) % len(ring)], labelled[ring[(i + k) % len(ring)]])
                           for k in range(1, n + 1)] for i, c in enumerate(ring)}}


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """VitaminC (claim, evidence, label): the edit asserts the evidence sentence (label ``true``).

    In scope: the claim, ``true`` when the evidence SUPPORTS it and ``false`` when it REFUTES
    it (a NOT ENOUGH INFO row is rejected as ``invalid_value:label``: the evidence neither
    entails nor contradicts its claim). Out of scope: the claims of other rows of the file
    with their own verdicts. Rows sharing an evidence sentence share an edit id (the first wins).
    """
    claim, evidence, label = r.text("claim"), r.text("evidence"), r.text("label")
    if label is not None and label not in VITAMINC_LABELS:
        r.add("invalid_value", "label")
    if r.reasons:
        return None
    others = ctx.extra.get("others", {}).get(claim, [])
    return dict(
        edit_input=evidence,
        edit_label="true",
        in_scope=[Example(claim, VITAMINC_LABELS[label])],
        out_of_scope=[Example(c, truth) for c, truth in others if c != claim],
    )


SPECS = (
    spec("vitaminc", "claim evidence label", "fc", convert, optional="unique_id case_id page revision_type",
         file_context=file_context),
)
