"""The report of one ingestion run: a row per batch, totals, and Markdown for a Prefect artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from serac.config import IngestConfig
from serac.data.errors import DataFileError

if TYPE_CHECKING:
    from serac.data.validation import ValidationReport
    from serac.memory.audit import AuditRecord
    from serac.pipeline.ingest import Batch

INGESTED, REFUSED, FAILED = "ingested", "refused", "failed"


@dataclass
class BatchRow:
    """What happened to one pending batch."""

    file: str
    sha256: str
    status: str
    """``ingested``, ``refused`` (too many bad rows, or not readable as a batch: nothing added)
    or ``failed`` (an error while adding; the ledger entry was rolled back)."""
    rows_in: int = 0
    passed: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    added: int = 0
    already_in_memory: int = 0
    memory_version: int | None = None
    out_dir: str | None = None
    message: str = ""

    @classmethod
    def validated(cls, batch: Batch, report: "ValidationReport", cfg: IngestConfig) -> BatchRow:
        """A row from a validation report: ``refused`` when the batch failed as a whole, else to be ingested."""
        return cls(
            file=batch.source or str(batch.path),
            sha256=batch.sha256,
            status=INGESTED if report.batch_ok else REFUSED,
            rows_in=report.rows_in,
            passed=len(report.passed),
            quarantined=len(report.quarantined),
            reasons=dict(report.reason_counts),
            out_dir=str(batch.out_dir(cfg)),
            message="" if report.batch_ok else (
                f"{report.failure_rate:.0%} of rows quarantined (limit {report.max_failure_rate:.0%}); nothing added"),
        )

    @classmethod
    def refused_entry(cls, batch: Batch) -> BatchRow:
        """An inbox entry refused unopened (a link out of the inbox, not a regular file)."""
        return cls(file=batch.source or str(batch.path), sha256="", status=REFUSED, message=batch.refused)

    @classmethod
    def unreadable(cls, batch: Batch, error: BaseException) -> BatchRow:
        """A batch whose validation raised: refused for a bad file, failed for anything else."""
        status = REFUSED if isinstance(error, DataFileError) else FAILED
        return cls(file=batch.source or str(batch.path), sha256=batch.sha256, status=status,
                   message=f"{type(error).__name__}: {error}")


@dataclass
class IngestReport:
    """One ingestion run: a row per pending batch, the memory before/after, recall and the retrain decision."""

    memory_root: str
    memory_version_before: int
    memory_version: int
    batches: list[BatchRow] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    """Inbox files skipped because their sha256 is in the ledger."""
    memory_md5: str | None = None
    """The memory's DVC md5 (None outside a DVC repository, or when tracking is off)."""
    served_by: str = ""
    """Which registered model version serves this memory now (``ingest.register_memory``), or why none does."""
    recall: float | None = None
    """Scope recall on the edits this run added (:func:`scope_recall`)."""
    new_edits_since_training: int = 0
    retrain: bool = False
    retrain_reason: str = ""
    retrain_action: str = ""
    audit_log: str | None = None
    """The memory's audit trail (``<memory root>/audit.jsonl``)."""
    audit: list[dict[str, Any]] = field(default_factory=list)
    """This run's audit records, summarised (:meth:`add_audit`)."""

    def add_audit(self, log: str, records: list[AuditRecord]) -> None:
        """Link the audit trail and summarise the records this run appended to it."""
        self.audit_log = log
        self.audit = [
            {"seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action, "edits": len(r.edit_ids),
             "version_before": r.version_before, "version_after": r.version_after, "source": r.source,
             "reason": r.reason, "hash": r.hash}
            for r in records
        ]

    @property
    def totals(self) -> dict[str, int]:
        keys = ("rows_in", "passed", "quarantined", "added", "already_in_memory")
        totals = {k: sum(getattr(row, k) for row in self.batches) for k in keys}
        for status in (INGESTED, REFUSED, FAILED):
            totals[status] = sum(row.status == status for row in self.batches)
        return totals

    @property
    def failed(self) -> list[BatchRow]:
        return [row for row in self.batches if row.status == FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals}

    def to_markdown(self) -> str:
        """The run as Markdown: per-batch counts, quarantine reasons, memory version, recall, retrain decision."""
        t = self.totals
        lines = [
            "# Nightly ingest",
            "",
            f"**{len(self.batches)}** new batch(es): {t[INGESTED]} ingested, {t[REFUSED]} refused, "
            f"{t[FAILED]} failed; {len(self.already_ingested)} already in the ledger (skipped).",
            "",
        ]
        if self.batches:
            lines += [
                "| batch | status | rows in | passed | quarantined | added | already in memory | memory version |",
                "|---|---|---:|---:|---:|---:|---:|---:|",
            ]
            for row in self.batches:
                version = "" if row.memory_version is None else f"v{row.memory_version}"
                lines.append(
                    f"| `{_md(PurePosixPath(row.file).name)}` `{row.sha256[:8]}` | {row.status} | {row.rows_in} | "
                    f"{row.passed} | {row.quarantined} | {row.added} | {row.already_in_memory} | {version} |"
                )
            lines.append(
                f"| **total** | | {t['rows_in']} | {t['passed']} | {t['quarantined']} | {t['added']} | "
                f"{t['already_in_memory']} | |"
            )
            reasons = [(row, reason, n) for row in self.batches for reason, n in row.reasons.items()]
            if reasons:
                lines += ["", "## Quarantined rows by reason", "", "| batch | reason | rows |", "|---|---|---:|"]
                lines += [f"| `{_md(PurePosixPath(row.file).name)}` | `{_md(reason)}` | {n} |"
                          for row, reason, n in reasons]
            notes = [row for row in self.batches if row.message]
            if notes:
                lines += ["", "## Notes", ""]
                lines += [f"- `{_md(PurePosixPath(row.file).name)}` ({row.status}): {_md(row.message)}"
                          for row in notes]
            outputs = [row for row in self.batches if row.out_dir]
            if outputs:
                lines += ["", "Validation outputs (passed / quarantine Parquet, GX result, HTML report): "
                          + ", ".join(f"`{_md(row.out_dir or '')}`" for row in outputs)]
        recall = "n/a (no new edits)" if self.recall is None else f"{self.recall:.3f}"
        lines += [
            "",
            "## Memory and editor",
            "",
            f"- memory `{_md(self.memory_root)}`: version v{self.memory_version_before} -> v{self.memory_version}"
            + (f", DVC md5 `{self.memory_md5}`" if self.memory_md5 else ""),
            *([f"- served by: {_md(self.served_by)}"] if self.served_by else []),
            f"- scope recall on the new edits: {recall}",
            f"- edits added since the last training: {self.new_edits_since_training}",
            f"- retrain: **{'yes' if self.retrain else 'no'}**: {_md(self.retrain_reason)}"
            + (f" ({_md(self.retrain_action)})" if self.retrain_action else ""),
            "",
        ]
        if self.audit_log is not None:
            lines += self._audit_markdown()
        return "\n".join(lines)

    def _audit_markdown(self) -> list[str]:
        lines = ["## Audit trail", "",
                 f"{len(self.audit)} change(s) recorded by this run in `{_md(self.audit_log or '')}` "
                 f"(`serac memory history --memory {_md(self.memory_root)} --verify`).", ""]
        if self.audit:
            lines += ["| # | action | versions | edits | by | from | reason | hash |", "|---:|---|---|---:|---|---|---|---|"]
            lines += [f"| {a['seq']} | {a['action']} | v{a['version_before']} -> v{a['version_after']} | {a['edits']} | "
                      f"`{_cell(a['actor'])}` | `{_cell(a['source'])}` | {_cell(a['reason'] or '')} | `{a['hash'][:12]}` |"
                      for a in self.audit]
            lines.append("")
        return lines


def _cell(text: str) -> str:
    """User-given text (an audit reason, actor, source) for a table cell: control characters escaped too."""
    from serac.memory.audit import escape_text

    return _md(escape_text(text))


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("`", "'")

