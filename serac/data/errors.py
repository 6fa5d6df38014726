"""Errors and rejected rows shared by the readers, loaders and validation.

A whole-file problem (unreadable, empty, unknown format) raises
:class:`DataFileError`. A single bad row never raises: it becomes a
:class:`RejectedRow` that validation writes to quarantine, so that
rows in = rows passed + rows quarantined, always.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from serac.data.schema import EditRecord


class DataFileError(ValueError):
    """A data file cannot be read as a whole; the message names file, row and field."""

    def __init__(self, path: str, message: str, row: int | None = None, field: str | None = None):
        self.path = str(path)
        self.row = row
        self.field = field
        where = self.path
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class FormatError(DataFileError):
    """The file's fields match no known format, or more than one."""


@dataclass(frozen=True)
class RejectedRow:
    """A source row that could not become an :class:`EditRecord`."""

    source: str
    """``file#row`` (rows are 1-based, as an editor shows them)."""
    row: int
    reasons: tuple[str, ...]
    """Why, e.g. ``missing_field:alt``; these become quarantine reasons."""
    raw: str = ""
    """The row as text (JSON for structured rows), truncated to a few KiB."""


@dataclass
class LoadResult:
    """What a loader produced from one file: good records and rejected rows."""

    path: str
    format: str
    records: list[EditRecord] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        return len(self.records) + len(self.rejected)
