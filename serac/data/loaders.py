"""Load real edit datasets into :class:`EditRecord`s, one registered format each.

:data:`FORMATS` maps a format name to its :class:`FormatSpec`: the fields that
identify it, its task and its converter (one module per format in
:mod:`serac.data.formats`). :func:`detect_format` picks a format
from the fields a file uses; :func:`load_file` reads a file, detects (or is
told) its format and converts every row. A row that cannot be converted never
raises: it becomes a :class:`RejectedRow` whose reasons say why
(``missing_field:alt``, ``null_field:src``, ``wrong_type:answers``,
``empty_field:alt``, ``invalid_value:task``, ``invalid_json``, ...), so that
rows in = records + rejected, always. Whole-file problems raise
:class:`DataFileError` (:class:`FormatError` for format detection).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from serac.data.errors import FormatError, LoadResult, RejectedRow
from serac.data.formats import canonical, convsent, counterfact, generic, knowedit, vitaminc, zsre
from serac.data.formats.base import Context, FormatSpec, Row
from serac.data.formats.convsent import (
    CONVSENT_IN_SCOPE,
    CONVSENT_OTHER_ENTITIES,
    CONVSENT_PROMPT,
    convsent_responses,
    convsent_sentiment,
)
from serac.data.formats.generic import MAPPING_KEYS
from serac.data.formats.vitaminc import VITAMINC_LABELS, VITAMINC_OTHER_CLAIMS
from serac.data.formats.zsre import NQ_PREFIX
from serac.data.readers import UnparsableRow, read_rows
from serac.data.schema import TASKS, EditRecord, utc_now

__all__ = [
    "CONVSENT_IN_SCOPE",
    "CONVSENT_OTHER_ENTITIES",
    "CONVSENT_PROMPT",
    "DETECT_ROWS",
    "FORMATS",
    "MAPPING_KEYS",
    "NQ_PREFIX",
    "RAW_LIMIT",
    "VITAMINC_LABELS",
    "VITAMINC_OTHER_CLAIMS",
    "FormatSpec",
    "convsent_responses",
    "convsent_sentiment",
    "detect_format",
    "load_file",
]

DETECT_ROWS = 50
"""Format detection looks at the union of the fields of this many first rows."""

RAW_LIMIT = 4096
"""A rejected row keeps at most this many bytes of its text."""

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for module in (zsre, counterfact, knowedit, convsent, vitaminc, canonical, generic)
    for spec in module.SPECS
}
"""Format name -> spec. ``generic`` is never detected: it needs ``mapping`` (and a task)."""


def detect_format(fields: set[str], path: str = "<fields>") -> str:
    """The format whose required fields are all in ``fields``.

    When several match, the most specific wins (its required fields a strict
    superset of the others'); otherwise, or when none matches, raise
    :class:`FormatError` listing the fields seen and the candidates.
    """
    matches = [n for n, s in FORMATS.items() if s.detectable and s.required <= fields]
    best = [n for n in matches if not any(FORMATS[n].required < FORMATS[o].required for o in matches)]
    if len(best) == 1:
        return best[0]
    seen = ", ".join(sorted(fields)) or "(none)"
    if best:
        raise FormatError(path, f"fields match several formats: {', '.join(best)}; pass format=... "
                                f"(fields seen: {seen})")
    near = sorted((len(s.required - fields), n) for n, s in FORMATS.items() if s.detectable)
    closest = "; ".join(f"{n} (missing {', '.join(sorted(FORMATS[n].required - fields))})" for _, n in near)
    raise FormatError(path, f"fields match no known format (fields seen: {seen}); candidates: {closest}")


def load_file(
    path: str | Path,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    task: str | None = None,
    *,
    source_name: str | None = None,
    ingested_at: datetime | None = None,
) -> LoadResult:
    """Read ``path`` and convert each row to an :class:`EditRecord` or a :class:`RejectedRow`.

    ``format`` defaults to ``generic`` when a ``mapping`` is given, else to the
    detected format. ``task`` overrides the format's task (``generic`` needs it
    unless the mapping names a task column). Records get ``source`` =
    ``"<source_name>#<row>"`` (``source_name`` defaults to the path as given)
    and ``ingested_at`` (default: now, the same for every row of the file).
    """
    where = str(path)
    name = source_name if source_name is not None else where
    format = format or ("generic" if mapping is not None else None)
    rows = list(read_rows(path))
    if format is None:
        fields: set[str] = set()
        for _, row in [item for item in rows if not isinstance(item[1], UnparsableRow)][:DETECT_ROWS]:
            fields.update(row)
        format = detect_format(fields, path=where)
    spec = _resolve(where, format, mapping, task)
    parsed = [row for _, row in rows if not isinstance(row, UnparsableRow)]
    ctx = Context(task or spec.task, dict(mapping or {}), spec.file_context(parsed) if spec.file_context else {})
    stamp = ingested_at or utc_now()
    result = LoadResult(path=where, format=format)
    for row_no, row in rows:
        source = f"{name}#{row_no}"
        if isinstance(row, UnparsableRow):
            result.rejected.append(RejectedRow(source, row_no, (row.reason,), _truncate(row.text)))
            continue
        r = Row(row)
        for required in sorted(spec.required):
            r.value(required)
        try:
            kwargs = spec.convert(r, ctx)
            defaults = {"task": ctx.task, "source": source, "ingested_at": stamp}
            record = None if kwargs is None else EditRecord(**(defaults | kwargs))
        except ValueError:  # EditRecord's own checks (e.g. an unknown task)
            r.reasons.append("invalid_record")
            record = None
        if record is None:
            reasons = tuple(dict.fromkeys(r.reasons)) or ("invalid_record",)
            result.rejected.append(RejectedRow(source, row_no, reasons, _truncate(_dump(row))))
        else:
            result.records.append(record)
    return result


def _resolve(where: str, format: str, mapping: dict[str, str] | None, task: str | None) -> FormatSpec:
    """Check the explicit settings of :func:`load_file`; raise :class:`FormatError` on misuse."""
    if format not in FORMATS:
        raise FormatError(where, f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if task is not None and task not in TASKS:
        raise FormatError(where, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if format != "generic":
        if mapping is not None:
            raise FormatError(where, f"a column mapping applies to the generic format only, not {format!r}")
        return FORMATS[format]
    generic.check_mapping(where, mapping, task)
    return FORMATS[format]


def _dump(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


def _truncate(text: str, limit: int = RAW_LIMIT) -> str:
    # lone surrogates (from JSON escapes like "\ud800") cannot be encoded: keep them escaped
    data = text.encode("utf-8", errors="backslashreplace")
    return data[:limit].decode("utf-8", errors="ignore")
