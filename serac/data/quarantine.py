"""Quarantine: the rows a batch could not accept, with why, in one Parquet layout.

A row lands here either because the loader could not parse it (a
:class:`~serac.data.errors.RejectedRow`, reasons such as ``missing_field:alt``) or
because it parsed but failed the validation suite (reasons are the names of the
failed expectations, such as ``expect_column_values_to_not_be_null(edit_label)``).
Both kinds share :data:`QUARANTINE_SCHEMA`, so one file answers "what did we drop
from this batch, and why".
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from serac.data.errors import RejectedRow
from serac.data.schema import EditRecord, records_to_table
from serac.io import write_bytes, write_json, write_parquet

if TYPE_CHECKING:
    from serac.data.validation import ValidationReport

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("row", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("edit_id", pa.string()),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ],
    metadata={"serac.schema": "quarantine/1"},
)
"""Arrow layout of ``quarantine.parquet``: one row per quarantined source row.

``row`` is the 1-based source row, ``edit_id`` is null for rows that never
became a record, ``raw`` is the row as text (JSON for structured rows).
"""

RAW_LIMIT = 4096
"""Characters of a row kept in ``raw``; longer rows are cut and marked with an ellipsis."""

_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class QuarantinedRow:
    """One source row that did not pass, and every reason why."""

    row: int
    source: str
    edit_id: str | None
    reasons: tuple[str, ...]
    raw: str

    def to_row(self) -> dict:
        return {
            "row": self.row,
            "source": self.source,
            "edit_id": self.edit_id,
            "reasons": list(self.reasons),
            "raw": self.raw,
        }


def from_rejected(rejected: RejectedRow) -> QuarantinedRow:
    """A loader reject, quarantined with the loader's own reasons."""
    return QuarantinedRow(
        row=rejected.row,
        source=rejected.source,
        edit_id=None,
        reasons=tuple(rejected.reasons),
        raw=safe_text(rejected.raw),
    )


def from_record(record: EditRecord, row: int, reasons: Iterable[str]) -> QuarantinedRow:
    """A parsed record that failed validation; ``raw`` is its JSON without ``ingested_at``."""
    fields = record.to_row()
    fields.pop("ingested_at")
    raw = json.dumps(fields, ensure_ascii=False, default=str)
    return QuarantinedRow(row, record.source, record.edit_id, tuple(reasons), safe_text(raw))


def safe_text(text: str) -> str:
    """``text`` cut to :data:`RAW_LIMIT`, with lone surrogates (not storable as UTF-8) escaped."""
    text = text if isinstance(text, str) else str(text)
    if len(text) > RAW_LIMIT:
        text = text[:RAW_LIMIT] + "…"
    if _SURROGATES.search(text):
        text = _SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def sort_rows(rows: Iterable[QuarantinedRow]) -> list[QuarantinedRow]:
    """Source order (row, then source), so reruns write identical files."""
    return sorted(rows, key=lambda q: (q.row, q.source))


def reason_counts(rows: Iterable[QuarantinedRow]) -> dict[str, int]:
    """Quarantined rows per reason (a row with two reasons counts under both), most common first."""
    counts = Counter(reason for q in rows for reason in q.reasons)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def quarantine_table(rows: Iterable[QuarantinedRow]) -> pa.Table:
    return pa.Table.from_pylist([q.to_row() for q in rows], schema=QUARANTINE_SCHEMA)


def write_quarantine(path: str | Path, rows: Iterable[QuarantinedRow]) -> None:
    """Write ``rows`` atomically as ``path`` (Parquet, :data:`QUARANTINE_SCHEMA`), even when empty."""
    write_parquet(path, quarantine_table(rows))


def read_quarantine(path: str | Path) -> list[QuarantinedRow]:
    table = pq.read_table(path, schema=QUARANTINE_SCHEMA)
    return [
        QuarantinedRow(r["row"], r["source"], r["edit_id"], tuple(r["reasons"]), r["raw"])
        for r in table.to_pylist()
    ]


# ---------------------------------------------------------------- a batch's output directory

OUTPUT_FILES = ("passed.parquet", "quarantine.parquet", "gx_result.json", "report.html", "summary.json")
"""What :func:`write_outputs` writes, in this order; ``summary.json`` last marks a complete set."""


def write_outputs(
    out_dir: str | Path, report: "ValidationReport", *, path: str, format: str, training: bool
) -> dict[str, Any]:
    """Write a validated batch into ``out_dir``; returns the summary.

    Each file is written atomically (temporary sibling + rename) and nothing else in
    ``out_dir`` is touched. Outputs carry no timestamps, so re-running on the same
    input rewrites identical bytes. ``report.html`` is a self-contained page rendered
    from the GX result, not GX Data Docs: those carry random ids and a timestamp per
    build and load their styles and scripts from CDNs.
    """
    out = Path(out_dir)
    summary = {"file": path, "format": format, "training": training, **report.summary()}
    write_parquet(out / "passed.parquet", records_to_table(report.passed))
    write_quarantine(out / "quarantine.parquet", report.quarantined)
    write_json(out / "gx_result.json", report.gx_result)
    write_bytes(out / "report.html", render_html(report, summary).encode("utf-8"))
    write_json(out / "summary.json", summary)
    return summary


HTML_ROW_LIMIT = 500
"""Quarantined rows listed in ``report.html`` (all of them are in ``quarantine.parquet``)."""

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
    ".ok{color:#11772d;font-weight:bold}.bad{color:#b00020;font-weight:bold}code{font-size:90%}"
    ".raw{max-width:50em;word-break:break-all;font-family:monospace;font-size:85%}"
)


def render_html(report: "ValidationReport", summary: dict[str, Any]) -> str:
    """A self-contained HTML page: summary, counts per reason, every expectation, quarantined rows."""
    e = html.escape
    status = '<span class="ok">PASSED</span>' if report.batch_ok else '<span class="bad">FAILED</span>'
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>serac validate: {e(summary['file'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Validation of <code>{e(summary['file'])}</code></h1>",
        f"<p>Batch {status}: failure rate {report.failure_rate:.2%} (limit {report.max_failure_rate:.2%}); "
        f"format <code>{e(str(summary['format']))}</code>, tasks {e(', '.join(report.tasks) or '-')}, "
        f"training checks {'on' if summary['training'] else 'off'}.</p>",
        _table(["rows in", "passed", "quarantined"], [[report.rows_in, len(report.passed), len(report.quarantined)]]),
        "<h2>Quarantined rows by reason</h2>",
        _table(["reason", "rows"], [[f"<code>{e(k)}</code>", v] for k, v in report.reason_counts.items()], raw=True),
    ]
    index_name = "source rows" if report.gx_result.get("index") == "row" else "batch positions"
    for task, result in report.gx_result.get("runs", {}).items():
        rows = []
        for res in result.get("results", []):
            config, detail = res["expectation_config"], res.get("result", {})
            failing = [str(x) for x in (detail.get("unexpected_index_list") or [])[:20]]
            rows.append([
                f"<code>{e(config['type'])}({e(str(config['kwargs'].get('column', '')))})</code>",
                e(config.get("description") or ""),
                '<span class="ok">yes</span>' if res["success"] else '<span class="bad">no</span>',
                detail.get("unexpected_count", ""),
                e(", ".join(failing) + (" ..." if detail.get("unexpected_count", 0) > len(failing) else "")),
            ])
        parts += [f"<h2>Expectations: suite <code>{e(result.get('suite_name', task))}</code></h2>",
                  _table(["expectation", "meaning", "passed", "failing rows", f"first failing ({index_name})"],
                         rows, raw=True)]
    shown = report.quarantined[:HTML_ROW_LIMIT]
    parts += [
        f"<h2>Quarantined rows ({len(shown)} of {len(report.quarantined)} shown)</h2>",
        _table(
            ["row", "source", "edit_id", "reasons", "raw"],
            [[r.row, e(r.source), e(r.edit_id or ""), "<br>".join(f"<code>{e(x)}</code>" for x in r.reasons),
              f"<div class='raw'>{e(r.raw[:400])}</div>"] for r in shown],
            raw=True,
        ),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[Any]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (the caller escaped them)."""
    cell = (lambda v: str(v)) if raw else (lambda v: html.escape(str(v)))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
