"""``serac validate``: run the validation suite on one data file and quarantine bad rows.

Exit codes: 0 the batch passed, 1 too many rows were quarantined
(``validation.max_failure_rate``), 2 the file (or the settings) could not be used
at all: a one-line error naming file, row and field, no traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from serac.cli.app import app
from serac.config import DEFAULT_PARAMS, ConfigError, load_config

DEFAULT_OUT_ROOT = Path("data/validated")
"""Without ``--out``, outputs go to ``data/validated/<file stem>/``."""


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="Data file to validate (JSON Lines, JSON array, CSV or Parquet)."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default: data/validated/<file stem>)."),
    params: Path = typer.Option(DEFAULT_PARAMS, "--params", help="params.yaml; its validation section is used."),
    format: str | None = typer.Option(None, "--format", help="Source format (default: detected from the fields)."),
    task: str | None = typer.Option(None, "--task", help="Task of the batch: qa, fact, fc or convsent."),
    memory_ids: Path | None = typer.Option(
        None, "--memory-ids", help="edit_ids already in the memory: a text file (one per line) or a Parquet file."
    ),
    training: bool = typer.Option(True, "--training/--no-training", help="Apply the training-data checks."),
) -> None:
    """Validate FILE with Great Expectations; write passed.parquet, quarantine.parquet and reports."""
    from serac.data.errors import DataFileError
    from serac.data.validation import validate_file

    err = Console(stderr=True)
    try:
        cfg = load_config(params).validation
        existing = read_id_set(memory_ids) if memory_ids is not None else frozenset()
        report = validate_file(
            file,
            out if out is not None else DEFAULT_OUT_ROOT / file.stem,
            cfg,
            format=format,
            task=task,
            existing_ids=existing,
            training=training,
        )
    except (DataFileError, ConfigError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None

    table = Table(title=f"serac validate {file}")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("rows in", str(report.rows_in))
    table.add_row("passed", str(len(report.passed)))
    table.add_row("quarantined", str(len(report.quarantined)))
    for reason, count in report.reason_counts.items():
        table.add_row(f"  {reason}", str(count))
    console = Console()
    console.print(table)
    verdict = "[green]batch OK[/]" if report.batch_ok else "[red]batch FAILED[/]"
    console.print(
        f"{verdict}: failure rate {report.failure_rate:.1%} (limit {report.max_failure_rate:.1%}); "
        f"outputs in {out if out is not None else DEFAULT_OUT_ROOT / file.stem}",
        soft_wrap=True,
    )
    if not report.batch_ok:
        raise typer.Exit(1)


def read_id_set(path: Path) -> frozenset[str]:
    """edit_ids from a Parquet file's ``edit_id`` column, or a text file (one per line, ``#`` comments)."""
    from serac.data.errors import DataFileError

    if not path.is_file():
        raise DataFileError(str(path), "no such file (--memory-ids)")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return frozenset(pq.read_table(path, columns=["edit_id"]).column("edit_id").to_pylist())
        except Exception as exc:  # pyarrow raises several types for unreadable files / missing columns
            raise DataFileError(str(path), f"cannot read edit_id column: {exc}", field="edit_id") from None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFileError(str(path), f"not UTF-8 text: {exc.reason}") from None
    return frozenset(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))
