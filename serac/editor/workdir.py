"""An editor from a work directory: the trained components the training steps (and DVC stages) leave there.

``work_dir/base`` (only for the pipeline-trained offline base model; any other base is
used as configured), ``work_dir/scope`` and ``work_dir/counterfactual``. Training writes
them (:mod:`serac.training.editor`), evaluation and packaging read them back from here.
"""

from __future__ import annotations

from pathlib import Path

from serac.config import ProjectConfig
from serac.editor.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.base import BaseModel, build_base_model
from serac.models.device import resolve_device
from serac.models.hub import OFFLINE_DEFAULT
from serac.models.in_context import load_counterfactual
from serac.models.scope import ScopeClassifier

BASE_DIR, SCOPE_DIR, COUNTERFACTUAL_DIR = "base", "scope", "counterfactual"


def pipeline_trains_base(config: ProjectConfig) -> bool:
    """The offline default base model is trained by the pipeline; any other is used as configured."""
    return config.base.name_or_path == OFFLINE_DEFAULT and config.base.kind in ("seq2seq", "classifier")


def load_base(config: ProjectConfig, work_dir: str | Path) -> BaseModel:
    """The frozen base model: the pipeline-trained artifact, or the configured model."""
    artifact = Path(work_dir) / BASE_DIR if pipeline_trains_base(config) else None
    return build_base_model(config.base, resolve_device(config.editor.device), artifact_dir=artifact,
                            batch_size=config.editor.batch_size)


def assemble_editor(config: ProjectConfig, work_dir: str | Path, memory: EditMemory) -> SeracEditor:
    """An editor from the trained components in ``work_dir`` (the DVC stages' outputs)."""
    work_dir = Path(work_dir)
    device = resolve_device(config.editor.device)
    scope = ScopeClassifier.load(work_dir / SCOPE_DIR, device=device)
    base = load_base(config, work_dir)
    counterfactual = load_counterfactual(work_dir / COUNTERFACTUAL_DIR, device, base)
    return SeracEditor(scope, counterfactual, base, memory, config.editor)
