"""The canonical edit record: one dataclass and the matching pyarrow schema.

Every loader maps its source format onto :class:`EditRecord`; the memory, the
validation suite and training all read this one shape. See docs/edit-record.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Iterable

import pyarrow as pa

TASKS: tuple[str, ...] = ("qa", "fact", "fc", "convsent", "qa_hard")
"""Edit tasks: ``qa`` zsRE-style questions, ``fact`` CounterFact-style prompts,
``fc`` true/false claims, ``convsent`` sentiment on a topic, ``qa_hard`` a QA edit
tested on the true/false questions it implies (``serac.data.generators``)."""


@dataclass(frozen=True)
class Example:
    """One query with its expected answer.

    ``label`` is ``None`` when the expected answer is "whatever the unedited base
    model says" (e.g. out-of-scope ConvSent prompts).
    """

    input: str
    label: str | None = None


def edit_id_for(task: str, edit_input: str, edit_label: str) -> str:
    """Stable content hash of an edit: sha256 over its task, input and label.

    Two records that install the same fact get the same id, whatever their
    source or test examples, so ingesting the same edit twice is a no-op.
    """
    payload = json.dumps([task, edit_input, edit_label], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class EditRecord:
    """One edit: a new label for an input, plus the queries that test it."""

    task: str
    edit_input: str
    edit_label: str
    in_scope: tuple[Example, ...] = ()
    """Queries the edit should change: rephrasings, entailed or implied queries."""
    out_of_scope: tuple[Example, ...] = ()
    """Queries the edit must not change (locality), with their original answers."""
    subject: str | None = None
    ground_truth: str | None = None
    """The answer before the edit, where known."""
    source: str = ""
    """Where the record came from, ``file#row`` for loaded data."""
    ingested_at: datetime = field(default_factory=utc_now)
    edit_id: str = ""
    """Content hash; computed from task/input/label when left empty."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        object.__setattr__(self, "in_scope", tuple(_as_example(e) for e in self.in_scope))
        object.__setattr__(self, "out_of_scope", tuple(_as_example(e) for e in self.out_of_scope))
        if not self.edit_id:
            object.__setattr__(self, "edit_id", edit_id_for(self.task, self.edit_input, self.edit_label))

    def to_row(self) -> dict[str, Any]:
        """A plain dict in the column layout of :data:`EDIT_SCHEMA`."""
        return {
            "edit_id": self.edit_id,
            "task": self.task,
            "edit_input": self.edit_input,
            "edit_label": self.edit_label,
            "subject": self.subject,
            "ground_truth": self.ground_truth,
            "in_scope": [{"input": e.input, "label": e.label} for e in self.in_scope],
            "out_of_scope": [{"input": e.input, "label": e.label} for e in self.out_of_scope],
            "source": self.source,
            "ingested_at": self.ingested_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "EditRecord":
        """Inverse of :meth:`to_row`; unknown keys are ignored."""
        ingested = row.get("ingested_at")
        if isinstance(ingested, str):
            ingested = datetime.fromisoformat(ingested)
        if ingested is not None and ingested.tzinfo is None:
            ingested = ingested.replace(tzinfo=UTC)
        return cls(
            task=row["task"],
            edit_input=row["edit_input"],
            edit_label=row["edit_label"],
            in_scope=tuple(Example(e["input"], e.get("label")) for e in (row.get("in_scope") or ())),
            out_of_scope=tuple(Example(e["input"], e.get("label")) for e in (row.get("out_of_scope") or ())),
            subject=row.get("subject"),
            ground_truth=row.get("ground_truth"),
            source=row.get("source") or "",
            ingested_at=ingested or utc_now(),
            edit_id=row.get("edit_id") or "",
        )


def _as_example(value: Example | dict[str, Any] | tuple[str, str | None]) -> Example:
    if isinstance(value, Example):
        return value
    if isinstance(value, dict):
        return Example(value["input"], value.get("label"))
    return Example(*value)


EXAMPLE_TYPE = pa.struct([("input", pa.string()), ("label", pa.string())])

EDIT_SCHEMA = pa.schema(
    [
        pa.field("edit_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("edit_input", pa.string(), nullable=False),
        pa.field("edit_label", pa.string(), nullable=False),
        pa.field("subject", pa.string()),
        pa.field("ground_truth", pa.string()),
        pa.field("in_scope", pa.list_(EXAMPLE_TYPE)),
        pa.field("out_of_scope", pa.list_(EXAMPLE_TYPE)),
        pa.field("source", pa.string()),
        pa.field("ingested_at", pa.timestamp("ms", tz="UTC")),  # Parquet stores ms anyway
    ],
    metadata={"serac.schema": "edit-record/1"},
)
"""Arrow layout of :class:`EditRecord`, used for every Parquet file of edits."""


def records_to_table(records: Iterable[EditRecord]) -> pa.Table:
    rows = [r.to_row() for r in records]
    return pa.Table.from_pylist(rows, schema=EDIT_SCHEMA)


def table_to_records(table: pa.Table) -> list[EditRecord]:
    return [EditRecord.from_row(row) for row in table.to_pylist()]
