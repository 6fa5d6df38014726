"""An edit written out as text: the one formatter the scope classifier (models) and data share.

It reads only the edit's fields, so any record with them (:class:`EditFields`, e.g.
``serac.data.schema.EditRecord``) can be formatted, and the models layer needs nothing
from the data layer above it.
"""

from __future__ import annotations

from typing import Protocol


class EditFields(Protocol):
    """What an edit template may read from a record."""

    @property
    def task(self) -> str: ...

    @property
    def edit_input(self) -> str: ...

    @property
    def edit_label(self) -> str: ...

    @property
    def subject(self) -> str | None: ...


def format_edit(record: EditFields, template: str) -> str:
    """Write an edit out as text; the template may use edit_input, edit_label, task, subject."""
    fields = {
        "edit_input": record.edit_input,
        "edit_label": record.edit_label,
        "task": record.task,
        "subject": record.subject or "",
    }
    try:
        return template.format(**fields)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"edit template {template!r}: unknown field {exc}; use {sorted(fields)}") from exc
