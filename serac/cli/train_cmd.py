"""``serac train``: train the editor's components on a prepared dataset and package it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import app
from serac.config import DEFAULT_PARAMS, ConfigError, load_config


@app.command("train")
def train(
    params: Annotated[Path, typer.Option("--params", help="Project parameters (params.yaml).")] = DEFAULT_PARAMS,
    work: Annotated[Path, typer.Option("--work", help="Component artifacts and checkpoints (resumable).")] = Path(
        "artifacts/work"
    ),
    out: Annotated[Optional[Path], typer.Option("--out", help="Packaged editor (default editor.artifact_dir).")] = None,
) -> None:
    """Train base model (offline default only), scope classifier and counterfactual model; package the editor.

    Rerunning reuses finished components and resumes an interrupted one from its checkpoint.
    """
    from serac.data.errors import DataFileError
    from serac.training.editor import load_training_data, train_editor

    console = Console()
    try:
        cfg = load_config(params)
        data = load_training_data(cfg)
    except (ConfigError, DataFileError) as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"training on {cfg.training.dataset}: {len(data.train)} train / {len(data.val)} val edits")
    editor, report = train_editor(cfg, data.train, data.val, work, world=data.world)
    target = out if out is not None else Path(cfg.editor.artifact_dir)
    editor.save(target)
    console.print_json(json.dumps(report.summary()))
    console.print(f"editor packaged in {target}")
