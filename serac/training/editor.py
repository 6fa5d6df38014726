"""Build a trained SeracEditor from edit records: base model, scope classifier, counterfactual model.

Each component is a resumable step: its finished artifact lives in
``work_dir/<component>/`` and a rerun loads it instead of training again; an
interrupted step resumes from ``work_dir/checkpoints/<component>/``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from serac.config import ProjectConfig
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.evaluation.tasks import TaskContext, spec_of
from serac.io import write_json
from serac.memory import EditMemory
from serac.models.artifacts import CONFIG_FILE
from serac.models.base import BaseModel, build_base_model
from serac.models.counterfactual import CounterfactualModel
from serac.models.device import resolve_device
from serac.models.hub import OFFLINE_DEFAULT
from serac.models.scope import KINDS_WITH_CROSS, ScopeClassifier
from serac.models.seq2seq import text_to_text_from_config
from serac.training.distributed import current_context, on_main
from serac.training.examples import label_swap_examples
from serac.training.generative import train_counterfactual, train_text_to_text
from serac.training.loop import TrainHook, TrainResult, prefixed
from serac.training.scope import train_cross_scope, train_embedding_scope

log = logging.getLogger(__name__)


@dataclass
class EditorTrainingReport:
    """What each step did: a TrainResult, or None when its artifact already existed."""

    results: dict[str, TrainResult | None] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float | str]]:
        out: dict[str, dict[str, float | str]] = {}
        for name, r in self.results.items():
            out[name] = (
                {"status": "reused"}
                if r is None
                else {"steps": r.steps, "resumed_from": r.resumed_from, "seconds": round(r.seconds, 1),
                      "best": r.best_metric if r.best_metric is not None else float("nan"), "stopped": r.stopped}
            )
        return out


def pipeline_trains_base(config: ProjectConfig) -> bool:
    """The offline default base model is trained by the pipeline; any other is used as configured."""
    return config.base.name_or_path == OFFLINE_DEFAULT and config.base.kind in ("seq2seq", "classifier")


def train_base(
    config: ProjectConfig, world: Sequence[EditRecord], work_dir: Path, hooks: Sequence[TrainHook] = (),
    ctx: TaskContext | None = None,
) -> TrainResult | None:
    """Train the offline default base model on the pre-edit world of ``world`` into ``work_dir/base``.

    What the pre-edit world is depends on the records' task (``TaskSpec.world_pairs``: the
    original facts for QA, the flipped true/false answers for QA-hard and fc, dataset
    responses for ConvSent); ``ctx`` carries what those need (default: from ``config``).

    A configured base model (any other name, a callable, an endpoint) is not trained:
    ``work_dir/base/reference.json`` records which one is used. Returns None when
    nothing was trained (configured model, or artifact already there).
    """
    out = work_dir / "base"
    if not pipeline_trains_base(config):
        write_json(out / "reference.json", asdict(config.base))
        return None
    if (out / CONFIG_FILE).exists():
        return None
    model = text_to_text_from_config(config.base).to(resolve_device(config.editor.device))
    pairs = spec_of(world).world_pairs(world, ctx or TaskContext(config=config, work_dir=work_dir))
    result = train_text_to_text(model, pairs, config.training.base, work_dir / "checkpoints" / "base",
                                hooks=hooks, desc="base model")
    on_main(current_context(), lambda: model.save(out))  # data-parallel: rank 0 writes, the others wait
    return result


def load_base(config: ProjectConfig, work_dir: Path) -> BaseModel:
    """The frozen base model: the pipeline-trained artifact, or the configured model."""
    artifact = work_dir / "base" if pipeline_trains_base(config) else None
    return build_base_model(config.base, resolve_device(config.editor.device), artifact_dir=artifact,
                            batch_size=config.editor.batch_size)


def train_scope(
    config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord], work_dir: Path,
    hooks: Sequence[TrainHook] = (),
) -> tuple[ScopeClassifier, dict[str, TrainResult | None]]:
    device = resolve_device(config.editor.device)
    out = work_dir / "scope"
    if (out / CONFIG_FILE).exists():
        return ScopeClassifier.load(out, device=device), {"scope_embedding": None}
    scope = ScopeClassifier.from_config(config.scope, device=device)
    tc = config.training
    results: dict[str, TrainResult | None] = {
        "scope_embedding": train_embedding_scope(
            scope, train, val, tc.scope, work_dir / "checkpoints" / "scope_embedding",
            hard_negatives=tc.hard_negatives, threshold=config.editor.threshold, hooks=hooks,
        )
    }
    if config.scope.kind in KINDS_WITH_CROSS:
        results["scope_cross"] = train_cross_scope(
            scope, train, val, tc.scope, work_dir / "checkpoints" / "scope_cross",
            hard_negatives=tc.hard_negatives, threshold=config.editor.threshold, hooks=hooks,
        )
    on_main(current_context(), lambda: scope.save(out))
    return scope, results


def train_counterfactual_model(
    config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord], work_dir: Path,
    hooks: Sequence[TrainHook] = (), ctx: TaskContext | None = None,
) -> tuple[CounterfactualModel, TrainResult | None]:
    """Train (or reuse) ``work_dir/counterfactual`` on the task's examples (``TaskSpec.counterfactual_examples``)
    plus label-swapped variants; from ``tasks.init_counterfactual`` when set (a warm start)."""
    device = resolve_device(config.editor.device)
    out = work_dir / "counterfactual"
    if (out / CONFIG_FILE).exists():
        return CounterfactualModel.load(out, device=device), None
    init = config.tasks.init_counterfactual
    model = (CounterfactualModel.load(init, device=device) if init
             else CounterfactualModel.from_config(config.counterfactual, device=device))
    spec = spec_of(train)
    ctx = ctx or TaskContext(config=config, work_dir=work_dir)
    tc = config.training
    examples = spec.counterfactual_examples(train, ctx, True)
    examples += label_swap_examples(examples, tc.label_swap_copies, tc.counterfactual.seed)
    result = train_counterfactual(
        model, examples, spec.counterfactual_examples(val, ctx, False),
        tc.counterfactual, work_dir / "checkpoints" / "counterfactual", hooks=hooks,
    )
    on_main(current_context(), lambda: model.save(out))
    return model, result


def train_editor(
    config: ProjectConfig,
    train: Sequence[EditRecord],
    val: Sequence[EditRecord],
    work_dir: str | Path,
    *,
    world: Sequence[EditRecord] | None = None,
    hooks: Sequence[TrainHook] = (),
) -> tuple[SeracEditor, EditorTrainingReport]:
    """Train (or reuse) every component and return an editor with an empty memory.

    ``world`` are the records whose *original* facts the offline base model learns
    (default: train + val); the editor's own components only ever see ``train``
    (and ``val`` for model selection).
    """
    work_dir = Path(work_dir)
    report = EditorTrainingReport()
    world = list(world if world is not None else [*train, *val])
    report.results["base"] = train_base(config, world, work_dir, prefixed(hooks, "base/"))
    base = load_base(config, work_dir)
    scope, scope_results = train_scope(config, train, val, work_dir, prefixed(hooks, "scope/"))
    report.results.update(scope_results)
    counterfactual, report.results["counterfactual"] = train_counterfactual_model(
        config, train, val, work_dir, prefixed(hooks, "counterfactual/"))
    memory_root = work_dir / "memory"
    on_main(current_context(), lambda: shutil.rmtree(memory_root, ignore_errors=True))
    memory = EditMemory.open(memory_root, config.memory)
    return SeracEditor(scope, counterfactual, base, memory, config.editor), report


def assemble_editor(config: ProjectConfig, work_dir: str | Path, memory: EditMemory) -> SeracEditor:
    """An editor from the trained components in ``work_dir`` (the DVC stages' outputs)."""
    work_dir = Path(work_dir)
    device = resolve_device(config.editor.device)
    scope = ScopeClassifier.load(work_dir / "scope", device=device)
    counterfactual = CounterfactualModel.load(work_dir / "counterfactual", device=device)
    return SeracEditor(scope, counterfactual, load_base(config, work_dir), memory, config.editor)


@dataclass(frozen=True)
class TrainingData:
    train: list[EditRecord]
    val: list[EditRecord]
    world: list[EditRecord]
    """Records whose original facts the offline base model learns: every split of the dataset
    (the base model stands for a pretrained model's world knowledge; it never sees an edit label)."""


def load_training_data(config: ProjectConfig) -> TrainingData:
    """The configured dataset's prepared splits, capped by ``training.max_*_edits``."""
    from serac.data.prepare import read_split

    tc, root = config.training, config.training.data_dir
    splits = {name: read_split(root, tc.dataset, name) for name in ("train", "val", "test")}
    return TrainingData(
        train=splits["train"][: tc.max_train_edits],
        val=splits["val"][: tc.max_val_edits],
        world=[*splits["train"], *splits["val"], *splits["test"]],
    )
