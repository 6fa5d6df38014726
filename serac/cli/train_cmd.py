"""``serac train``: train the editor's components on a prepared dataset and package it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from serac.cli.app import OverlayOpt, ParamsOpt, app, load_params
from serac.config import DEFAULT_PARAMS, ConfigError

COMPONENT_NAMES = {"base": "base model", "scope": "scope classifier", "counterfactual": "counterfactual model",
                   "variants": "counterfactual variants"}
"""How `serac train --component X` names what it trained (as before the orchestrations were merged)."""


@app.command("train")
def train(
    params: ParamsOpt = DEFAULT_PARAMS,
    overlay: OverlayOpt = None,
    work: Annotated[Path, typer.Option("--work", help="Component artifacts and checkpoints (resumable).")] = Path(
        "artifacts/work"
    ),
    out: Annotated[Optional[Path], typer.Option("--out", help="Packaged editor (default editor.artifact_dir).")] = None,
    component: Annotated[
        str, typer.Option("--component", help="all | judge | base | scope | counterfactual | variants (one DVC stage "
                                               "each; judge: tasks whose scorer needs one, ConvSent; variants: "
                                               "evaluation.counterfactual_variants with weights, causal_lora).")
    ] = "all",
) -> None:
    """Train the task's judge (ConvSent), base model (offline default only), scope classifier and counterfactual
    model; package the editor.

    Rerunning reuses finished components and resumes an interrupted one from its checkpoint.
    Runs data-parallel unchanged under ``torchrun --nproc_per_node=N`` (rank 0 logs and writes).
    """
    from serac.data.errors import DataFileError
    from serac.training import editor as steps

    console = Console()
    try:
        cfg = load_params(params, overlay)
        if component != "all" and component not in steps.COMPONENTS:
            raise ConfigError(f"--component: unknown {component!r}")
        data = steps.load_training_data(cfg)
    except (ConfigError, DataFileError) as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    from serac.models.device import resolve_device
    from serac.training.distributed import distributed_job

    with distributed_job(resolve_device(cfg.editor.device).type) as ctx:
        if not ctx.is_main:
            console = Console(quiet=True)
        mixture = " + ".join(f"{d} x{w:g}" for d, w in sorted(cfg.training.mixture.items())) or cfg.training.dataset
        console.print(f"training on {mixture}: {len(data.train)} train / {len(data.val)} val edits"
                      + (f" ({ctx.world_size} processes, {ctx.backend})" if ctx.enabled else ""))
        _train(cfg, data, work, out, component, console, main=ctx.is_main)


def _train(cfg, data, work: Path, out: Optional[Path], component: str, console: Console, *, main: bool) -> None:
    import contextlib

    from serac.editor.guard import validation_canaries
    from serac.pipeline.retrain import stage_run
    from serac.registry.tracking import MlflowHook
    from serac.training import editor as steps
    from serac.training.loop import seed_everything

    # the new layers' random initialisation (e.g. cross-attention) is a function of the seed, so
    # reruns, and 1 vs N processes, start from the same weights
    seed_everything(cfg.training.base.seed)
    # data-parallel: only rank 0 opens an MLflow run and writes the packaged editor
    with stage_run(cfg, f"train-{component}") if main else contextlib.nullcontext(None) as run_id:
        hooks = [MlflowHook(run_id=run_id)] if run_id else []
        if component != "all":
            report = steps.train_components(cfg, data, work, hooks, only=(component,))
            console.print(f"{COMPONENT_NAMES.get(component, component)} ready in {work / component}"
                          if report.results else _nothing_to_train(component, report.task))
            return
        editor, report = steps.train_editor(cfg, data.train, data.val, work, world=data.world, hooks=hooks)
    target = out if out is not None else Path(cfg.editor.artifact_dir)
    if main:
        editor.attach_canaries(validation_canaries(editor.scope, cfg.training.data_dir, cfg.training.dataset,
                                                   cfg.guard.canaries))
        editor.save(target)
    console.print_json(json.dumps(report.summary()))
    console.print(f"editor packaged in {target}")


def _nothing_to_train(component: str, task: str) -> str:
    """Why `serac train --component X` trained nothing (its config asks for nothing to train)."""
    if component == "variants":
        return ("variants: none to train (evaluation.counterfactual_variants lists no variant with weights; "
                "add causal_lora)")
    return f"{component}: none for task {task!r}"
