"""Any table with a column mapping (format ``generic``; never detected, it needs the mapping)."""

from __future__ import annotations

from typing import Any

from serac.data.errors import FormatError
from serac.data.formats.base import Context, Row, spec
from serac.data.schema import TASKS, Example

MAPPING_KEYS = (
    "edit_input",
    "edit_label",
    "in_scope",
    "out_of_scope_input",
    "out_of_scope_label",
    "subject",
    "ground_truth",
    "task",
)
"""Keys of a ``generic`` column mapping (values are the file's column names)."""


def check_mapping(where: str, mapping: dict[str, str] | None, task: str | None) -> None:
    """Raise :class:`FormatError` for a mapping with unknown or missing keys, or without a task."""
    mapping = mapping or {}
    unknown = sorted(set(mapping) - set(MAPPING_KEYS))
    missing = [key for key in ("edit_input", "edit_label") if key not in mapping]
    if unknown or missing:
        raise FormatError(where, f"generic mapping: unknown key(s) {unknown}, missing key(s) {missing}; "
                                 f"keys are {', '.join(MAPPING_KEYS)}")
    if task is None and "task" not in mapping:
        raise FormatError(where, "the generic format needs task=... or a 'task' column in the mapping")


def convert(r: Row, ctx: Context) -> dict[str, Any] | None:
    """Any table with a column mapping; list-valued columns give several examples.

    in_scope examples are labelled with the edit label; out_of_scope labels
    come from ``out_of_scope_label`` (one per input, or one for all), else ``None``.
    """
    m = ctx.mapping
    edit_input, edit_label = r.text(m["edit_input"]), r.text(m["edit_label"])
    task = r.text(m["task"]) if "task" in m else ctx.task
    if "task" in m and task is not None and task not in TASKS:
        r.add("invalid_value", m["task"])
    in_scope = r.texts(m["in_scope"], required=False, scalar_ok=True) if "in_scope" in m else []
    oos = r.texts(m["out_of_scope_input"], required=False, scalar_ok=True) if "out_of_scope_input" in m else []
    labels: list[str | None] = [None] * len(oos)
    if "out_of_scope_label" in m:
        found = r.texts(m["out_of_scope_label"], required=False, scalar_ok=True)
        if len(found) == 1:
            labels = found * len(oos)
        elif len(found) == len(oos):
            labels = list(found)
        elif found:
            r.add("invalid_value", m["out_of_scope_label"])
    optional = {key: r.text(m[key], required=False) for key in ("subject", "ground_truth") if key in m}
    if r.reasons:
        return None
    return dict(
        task=task,
        edit_input=edit_input,
        edit_label=edit_label,
        in_scope=[Example(q, edit_label) for q in in_scope],
        out_of_scope=[Example(q, label) for q, label in zip(oos, labels)],
        **optional,
    )


SPECS = (spec("generic", "", None, convert, optional=" ".join(MAPPING_KEYS), detectable=False),)
