"""Rows already in the :class:`~serac.data.schema.EditRecord` layout (format ``canonical``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from serac.data.formats.base import Context, Row, spec
from serac.data.schema import TASKS, Example, edit_id_for


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """Rows already in the :class:`EditRecord` layout (e.g. a prepared Parquet file).

    A given ``edit_id`` must match the content hash; a ``source`` column is
    replaced by this file's ``file#row`` like every other format.
    """
    task = r.text("task")
    if task is not None and task not in TASKS:
        r.add("invalid_value", "task")
    edit_input, edit_label = r.text("edit_input"), r.text("edit_label")
    subject, truth = r.text("subject", required=False), r.text("ground_truth", required=False)
    in_scope, out_of_scope = _examples(r, "in_scope"), _examples(r, "out_of_scope")
    ingested = _timestamp(r, "ingested_at")
    given_id = r.text("edit_id", required=False)
    if given_id and not r.reasons and given_id != edit_id_for(task, edit_input, edit_label):
        r.add("invalid_value", "edit_id")
    if r.reasons:
        return None
    out = dict(
        task=task,
        edit_input=edit_input,
        edit_label=edit_label,
        subject=subject,
        ground_truth=truth,
        in_scope=in_scope,
        out_of_scope=out_of_scope,
    )
    return out | ({"ingested_at": ingested} if ingested else {})


def _examples(r: Row, name: str) -> list[Example]:
    value = r.value(name, required=False)
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError:
            r.add("invalid_value", name)
            return []
    if value is None:
        return []
    good = isinstance(value, list) and all(
        isinstance(e, dict) and isinstance(e.get("input"), str) and isinstance(e.get("label"), (str, type(None)))
        for e in value
    )
    if not good:
        r.add("wrong_type", name)
        return []
    return [Example(e["input"], e.get("label")) for e in value]


def _timestamp(r: Row, name: str) -> datetime | None:
    value = r.value(name, required=False)
    if isinstance(value, str) and value.strip():
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            r.add("invalid_value", name)
            return None
    if not isinstance(value, datetime):
        if value not in (None, ""):
            r.add("wrong_type", name)
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SPECS = (
    spec("canonical", "edit_input edit_label task", None, convert,
         optional="edit_id subject ground_truth in_scope out_of_scope source ingested_at"),
)
