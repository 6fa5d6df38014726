"""``serac evaluate`` and ``serac package``: the last two DVC stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import app
from serac.config import DEFAULT_PARAMS, ConfigError, load_config

WorkOpt = Annotated[Path, typer.Option("--work", help="Trained components (serac train --work).")]
ReportsOpt = Annotated[Path, typer.Option("--reports", help="Evaluation outputs.")]


def _load(params: Path):
    try:
        return load_config(params)
    except ConfigError as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command("evaluate")
def evaluate(
    params: Annotated[Path, typer.Option("--params", help="Project parameters (params.yaml).")] = DEFAULT_PARAMS,
    work: WorkOpt = Path("artifacts/work"),
    reports: ReportsOpt = Path("reports"),
) -> None:
    """Tune the scope threshold on val, then SERAC vs baselines on test for every k: metrics, table, plots."""
    from serac.pipeline.retrain import evaluate as evaluate_stage
    from serac.pipeline.retrain import stage_run

    cfg = _load(params)
    with stage_run(cfg, "evaluate", section=cfg.evaluation) as run_id:
        run = evaluate_stage(cfg, work, reports, run_id=run_id)
    Console().print(f"threshold {run.threshold:.2f}; {run.seconds:.0f} s; outputs in {reports}/")


@app.command("package")
def package(
    params: Annotated[Path, typer.Option("--params", help="Project parameters (params.yaml).")] = DEFAULT_PARAMS,
    work: WorkOpt = Path("artifacts/work"),
    reports: ReportsOpt = Path("reports"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Packaged editor (default editor.artifact_dir).")] = None,
) -> None:
    """Package the trained components with the tuned threshold (and an empty memory) into one editor directory."""
    from serac.pipeline.retrain import package_editor

    cfg = _load(params)
    target = package_editor(cfg, work, reports, out if out is not None else Path(cfg.editor.artifact_dir))
    Console().print(f"editor packaged in {target}")
