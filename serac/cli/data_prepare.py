"""``serac prepare``: convert the raw datasets into split Parquet files."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from serac.cli.app import app
from serac.config import DEFAULT_PARAMS, ConfigError, load_config
from serac.data.errors import DataFileError
from serac.data.prepare import PrepareReport, prepare


@app.command("prepare")
def prepare_command(
    params: Annotated[Path, typer.Option("--params", help="Project parameters (the data section is used).")] = (
        DEFAULT_PARAMS
    ),
    root: Annotated[Path | None, typer.Option("--root", help="Raw data directory (overrides data.raw_root).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (overrides data.prepared_dir).")] = None,
) -> None:
    """Convert every dataset under the raw root into <out>/<dataset>/<split>.parquet."""
    console = Console()
    try:
        cfg = load_config(params).data
        overrides = {"raw_root": str(root) if root else None, "prepared_dir": str(out) if out else None}
        cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
        report = prepare(cfg)
    except (ConfigError, DataFileError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    console.print(render_report(report))


def render_report(report: PrepareReport) -> Table:
    """One row per dataset split, then per-dataset totals with duplicates and rejected rows."""
    table = Table(title=f"serac prepare: {report.raw_root} -> {report.prepared_dir}")
    for column, justify in [("dataset", "left"), ("split", "left"), ("rows", "right"),
                            ("duplicates", "right"), ("rejected", "right")]:
        table.add_column(column, justify=justify)
    for dataset in report.datasets:
        for split, rows in dataset.splits.items():
            table.add_row(dataset.name, split, str(rows), "", "")
        table.add_row(dataset.name, "[bold]total[/bold]", f"[bold]{dataset.records}[/bold]",
                      str(dataset.duplicates), str(dataset.rejected), end_section=True)
    if report.skipped:
        table.caption = f"skipped (not data): {', '.join(report.skipped)}"
    return table
