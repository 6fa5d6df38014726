"""``serac generate`` (QA-hard / fc records from prepared datasets) and ``serac tasks run`` (one editor per task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import OverlayOpt, ParamsOpt, app, fail, load_params
from serac.config import DEFAULT_PARAMS

tasks_app = typer.Typer(help="Per-task editors: QA-hard, fact checking, ConvSent (params.yaml: tasks).",
                        no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")


@app.command("generate")
def generate(
    task: Annotated[str, typer.Argument(help="qa_hard | fc")],
    params: ParamsOpt = DEFAULT_PARAMS,
    overlay: OverlayOpt = None,
) -> None:
    """Write data/prepared/<task>/<split>.parquet from the sources in tasks.generate (validate them next)."""
    from serac.data.generate import generate_dataset
    from serac.data.generators import GENERATORS

    if task not in GENERATORS:
        fail(f"no generator for task {task!r}; expected one of {', '.join(sorted(GENERATORS))}")
    cfg = load_params(params, overlay)
    gen = cfg.tasks.generate
    report = generate_dataset(task, gen.sources, cfg.data.prepared_dir, neighbours=gen.neighbours,
                              max_source_edits=dict(gen.max_source_edits))
    Console().print(f"{task}: {report.splits} records from {', '.join(report.sources)} "
                    f"({report.skipped} source edits without a usable ground truth skipped)")


@tasks_app.command("run")
def run(
    task: Annotated[Optional[list[str]], typer.Option("--task", help="Task(s) to run (default tasks.selected).")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
    work_root: Annotated[Path, typer.Option("--work-root", help="Per-task work dirs: <root>/<task>/work.")] = Path(
        "artifacts"),
    reports_root: Annotated[Path, typer.Option("--reports-root", help="Per-task reports: <root>/<task>/.")] = Path(
        "reports"),
) -> None:
    """Generate + validate the data, train the task's editor (resumable) and evaluate it, for each task."""
    from serac.pipeline.tasks import run_task

    cfg = load_params(params)
    for name in task or list(cfg.tasks.selected):
        run = run_task(params, name, work_root=work_root, reports_root=reports_root)
        Console().print(f"{name}: threshold {run.threshold:.2f}; {run.seconds:.0f} s; reports in {run.reports_dir}/")
