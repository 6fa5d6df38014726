"""``serac evaluate`` and ``serac package``: the last two DVC stages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import OverlayOpt, ParamsOpt, app, load_params
from serac.config import DEFAULT_PARAMS

WorkOpt = Annotated[Path, typer.Option("--work", help="Trained components (serac train --work).")]
ReportsOpt = Annotated[Path, typer.Option("--reports", help="Evaluation outputs.")]


@app.command("evaluate")
def evaluate(
    params: ParamsOpt = DEFAULT_PARAMS,
    overlay: OverlayOpt = None,
    work: WorkOpt = Path("artifacts/work"),
    reports: ReportsOpt = Path("reports"),
) -> None:
    """Tune the scope threshold on val, then SERAC vs baselines on test for every k: metrics, table, plots."""
    from serac.pipeline.retrain import evaluate as evaluate_stage
    from serac.pipeline.retrain import stage_run

    cfg = load_params(params, overlay)
    with stage_run(cfg, "evaluate", section=cfg.evaluation) as run_id:
        run = evaluate_stage(cfg, work, reports, run_id=run_id)
    Console().print(f"threshold {run.threshold:.2f}; {run.seconds:.0f} s; outputs in {reports}/")


@app.command("package")
def package(
    params: ParamsOpt = DEFAULT_PARAMS,
    overlay: OverlayOpt = None,
    work: WorkOpt = Path("artifacts/work"),
    reports: ReportsOpt = Path("reports"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Packaged editor (default editor.artifact_dir).")] = None,
) -> None:
    """Package the trained components with the tuned threshold (and an empty memory) into one editor directory."""
    from serac.pipeline.retrain import package_editor

    cfg = load_params(params, overlay)
    target = package_editor(cfg, work, reports, out if out is not None else Path(cfg.editor.artifact_dir))
    Console().print(f"editor packaged in {target}")
