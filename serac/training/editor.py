"""Train a SERAC editor's components from edit records: the one training orchestration.

``serac train`` (:func:`train_editor`, its ``--component`` steps through
:func:`train_components`), ``serac tasks run`` (:mod:`serac.pipeline.tasks`) and the
retrain flow all train through :func:`train_components`, in the order of
:data:`COMPONENTS`: the task's judge when its :class:`~serac.tasks.spec.TaskSpec` names
one (ConvSent), the base model, the scope classifier, the counterfactual model.

Each component is a resumable step: its finished artifact lives in
``work_dir/<component>/`` and a rerun loads it instead of training again; an
interrupted step resumes from ``work_dir/checkpoints/<component>/``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from serac.config import CounterfactualConfig, ProjectConfig, ScopeConfig, TrainConfig
from serac.data.prepare import read_split
from serac.data.schema import EditRecord
from serac.editor import SeracEditor
from serac.editor.workdir import (
    BASE_DIR,
    COUNTERFACTUAL_DIR,
    SCOPE_DIR,
    VARIANTS_DIR,
    assemble_editor,
    pipeline_trains_base,
    trained_variants,
    variant_config,
    variant_dir,
)
from serac.io import write_json
from serac.memory import EditMemory
from serac.models.artifacts import CONFIG_FILE
from serac.models.counterfactual import CounterfactualModel
from serac.models.device import resolve_device
from serac.models.in_context import KIND as IN_CONTEXT
from serac.models.in_context import save_in_context, template_of
from serac.models.scope import KINDS_WITH_CROSS, CrossEncoderScope, ScopeClassifier
from serac.models.seq2seq import text_to_text_from_config
from serac.tasks import TaskContext, by_task, mixture_name
from serac.training.distributed import current_context, on_main
from serac.training.examples import label_swap_examples
from serac.training.generative import train_counterfactual, train_text_to_text
from serac.training.judge import train_task_judge
from serac.training.loop import TrainHook, TrainResult, prefixed
from serac.training.mixture import mix
from serac.training.scope import train_scope_part

log = logging.getLogger(__name__)

COMPONENTS = ("judge", "base", "scope", "counterfactual", "variants")
"""In training order: the judge first, because ConvSent's counterfactual targets can be filtered by it;
the variants (evaluated beside the counterfactual model, never packaged) last."""
_COMPONENT_OF = {"scope_embedding": "scope", "scope_cross": "scope"}
"""Training runs that belong to one component (the scope classifier's two parts)."""


@dataclass
class EditorTrainingReport:
    """What each step did: a TrainResult, or None when its artifact already existed."""

    task: str = "qa"
    results: dict[str, TrainResult | None] = field(default_factory=dict)
    """Per training run: judge, base, scope_embedding (+ scope_cross), counterfactual."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per component trained (reused components are absent)."""
    steps: dict[str, int] = field(default_factory=dict)
    """Optimizer steps per component trained (the scope's runs summed; reused components are absent)."""
    judge_accuracy: float | None = None
    """The task judge's accuracy on the test split's pairs (tasks without a judge: None)."""

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

    def record(self, component: str, results: dict[str, TrainResult | None], began: float) -> None:
        """Add one component's runs, started at ``began`` (``time.monotonic``)."""
        self.results.update(results)
        done = [r for r in results.values() if r is not None]
        if done:
            self.seconds[component] = round(time.monotonic() - began, 1)
            self.steps[component] = sum(r.steps for r in done)


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
    out = work_dir / BASE_DIR
    if not pipeline_trains_base(config):
        write_json(out / "reference.json", asdict(config.base))
        return None
    if (out / CONFIG_FILE).exists():
        return None
    model = text_to_text_from_config(config.base).to(resolve_device(config.editor.device))
    ctx = ctx or TaskContext(config=config, work_dir=work_dir)
    pairs = [pair for spec, records in by_task(world) for pair in spec.world_pairs(records, ctx)]
    result = train_text_to_text(model, pairs, config.training.base, work_dir / "checkpoints" / BASE_DIR,
                                hooks=hooks, desc="base model")
    on_main(current_context(), lambda: model.save(out))  # data-parallel: rank 0 writes, the others wait
    return result


def train_scope(
    config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord], work_dir: Path,
    hooks: Sequence[TrainHook] = (),
) -> tuple[ScopeClassifier, dict[str, TrainResult | None]]:
    """Train (or reuse) ``work_dir/scope``: the embedding part, then the cross-encoder for the kinds
    that have one. A stored embedding-only classifier is reused when the kind now wants a
    cross-encoder: only the cross-encoder is trained (on hard negatives from that embedding)."""
    device = resolve_device(config.editor.device)
    out = work_dir / SCOPE_DIR
    tc = config.training
    results: dict[str, TrainResult | None] = {}
    if (out / CONFIG_FILE).exists():
        cross_dir = out / ScopeClassifier.CROSS_DIR
        if config.scope.kind not in KINDS_WITH_CROSS or cross_dir.is_dir():
            stored = ScopeClassifier.load(out, device=device)
            if stored.cross is None and cross_dir.is_dir():  # stored as embedding: keep its cross-encoder too
                stored.cross = CrossEncoderScope.load(cross_dir, device)
            return _with_routing(stored, config, out), {"scope_embedding": None}
        stored = ScopeClassifier.load(out, device=device, kind="embedding")
        log.info("%s: reusing the trained embedding; training the %s cross-encoder", out, config.scope.kind)
        cross = CrossEncoderScope.from_pretrained(config.scope.encoder, max_length=config.scope.max_length)
        scope = ScopeClassifier(_routing_of(stored.config, config, config.scope.kind), stored.embedding, cross)
        scope.to(device)
        results["scope_embedding"] = None
    else:
        scope = ScopeClassifier.from_config(config.scope, device=device)
        results["scope_embedding"] = train_scope_part(
            scope, "embedding", train, val, tc.scope, work_dir / "checkpoints" / "scope_embedding",
            hard_negatives=tc.hard_negatives, relation_negatives=tc.relation_negatives,
            threshold=config.editor.threshold, hooks=hooks,
        )
    if config.scope.kind in KINDS_WITH_CROSS:
        results["scope_cross"] = train_scope_part(
            scope, "cross", train, val, tc.scope_cross, work_dir / "checkpoints" / "scope_cross",
            hard_negatives=tc.hard_negatives, relation_negatives=tc.relation_negatives,
            threshold=config.editor.threshold, hooks=hooks,
        )
    on_main(current_context(), lambda: scope.save(out))
    return scope, results


def _routing_of(stored: ScopeConfig, config: ProjectConfig, kind: str) -> ScopeConfig:
    """``stored`` (what the weights were trained with) with ``config``'s routing settings, which need no training."""
    scope = config.scope
    return replace(stored, kind=kind, top_k=scope.top_k, rerank_above=scope.rerank_above,
                   rerank_mix=scope.rerank_mix, max_cross_candidates=scope.max_cross_candidates)


def _with_routing(scope: ScopeClassifier, config: ProjectConfig, out: Path) -> ScopeClassifier:
    """A reused classifier takes the configured kind and routing settings (candidates, rerank cut-off), saved
    when they changed. A stored cross-encoder is kept when the kind no longer uses it (switching back is free);
    the caller has trained one before any kind that needs it gets here."""
    routed = _routing_of(scope.config, config, config.scope.kind)
    if routed == scope.config:
        return scope
    scope = ScopeClassifier(routed, scope.embedding, scope.cross)
    on_main(current_context(), lambda: scope.save(out))
    return scope


def train_counterfactual_model(
    config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord], work_dir: Path,
    hooks: Sequence[TrainHook] = (), ctx: TaskContext | None = None,
) -> tuple[CounterfactualModel | None, TrainResult | None]:
    """Train (or reuse) ``work_dir/counterfactual`` on the task's examples (``TaskSpec.counterfactual_examples``)
    plus label-swapped variants; from ``tasks.init_counterfactual`` when set (a warm start). The
    ``in_context`` kind has no weights: its artifact (the template) is written, no model is returned."""
    out = work_dir / COUNTERFACTUAL_DIR
    if config.counterfactual.kind == IN_CONTEXT:  # nothing to train: the base LM answers with the edit in its prompt
        on_main(current_context(), lambda: save_in_context(out, template_of(config.counterfactual)))
        return None, None
    return _fit_counterfactual(config, config.counterfactual, config.training.counterfactual, train, val, out,
                               work_dir / "checkpoints" / COUNTERFACTUAL_DIR, hooks,
                               ctx or TaskContext(config=config, work_dir=work_dir),
                               init=config.tasks.init_counterfactual)


def train_variants(
    config: ProjectConfig, train: Sequence[EditRecord], val: Sequence[EditRecord], work_dir: Path,
    hooks: Sequence[TrainHook] = (), ctx: TaskContext | None = None,
) -> dict[str, TrainResult | None]:
    """Train (or reuse) each counterfactual variant with weights that ``evaluation.counterfactual_variants``
    names (``causal_lora``: ``training.causal_lora``) into ``work_dir/variants/<kind>``, on the same
    examples as the counterfactual model. ``work_dir/variants/variants.json`` lists them (also when none)."""
    results: dict[str, TrainResult | None] = {}
    kinds = trained_variants(config)
    ctx = ctx or TaskContext(config=config, work_dir=work_dir)
    for kind in kinds:
        _, results[f"variant_{kind}"] = _fit_counterfactual(
            config, variant_config(config, kind), getattr(config.training, kind), train, val,
            variant_dir(work_dir, kind), work_dir / "checkpoints" / VARIANTS_DIR / kind, prefixed(hooks, f"{kind}/"),
            ctx)
    on_main(current_context(), lambda: write_json(work_dir / VARIANTS_DIR / "variants.json", {"trained": list(kinds)}))
    return results


def _fit_counterfactual(
    config: ProjectConfig, cf: CounterfactualConfig, steps: TrainConfig, train: Sequence[EditRecord],
    val: Sequence[EditRecord], out: Path, checkpoints: Path, hooks: Sequence[TrainHook],
    ctx: TaskContext, init: str | None = None,
) -> tuple[CounterfactualModel, TrainResult | None]:
    """Reuse the model in ``out``, else train one described by ``cf`` (from ``init`` when given) and save it there."""
    device = resolve_device(config.editor.device)
    if (out / CONFIG_FILE).exists():
        return CounterfactualModel.load(out, device=device), None
    model = (CounterfactualModel.load(init, device=device) if init
             else CounterfactualModel.from_config(cf, device=device))
    tc = config.training
    examples = [e for spec, records in by_task(train) for e in spec.counterfactual_examples(records, ctx, True)]
    examples += label_swap_examples(examples, tc.label_swap_copies, steps.seed)
    val_examples = [e for spec, records in by_task(val) for e in spec.counterfactual_examples(records, ctx, False)]
    result = train_counterfactual(model, examples, val_examples, steps, checkpoints, hooks=hooks,
                                  desc=f"counterfactual ({cf.kind})")
    on_main(current_context(), lambda: model.save(out))
    return model, result


@dataclass(frozen=True)
class TrainingData:
    train: list[EditRecord]
    val: list[EditRecord]
    world: list[EditRecord]
    """Records whose original facts the offline base model learns: every split of the dataset
    (the base model stands for a pretrained model's world knowledge; it never sees an edit label)."""


def load_training_data(config: ProjectConfig) -> TrainingData:
    """The configured datasets' prepared splits, capped by ``training.max_*_edits``.

    One dataset (empty ``training.mixture``): its splits as they are. A mixture: train edits
    drawn by repeat factor (:func:`serac.training.mixture.mix`, seeded by ``training.mixture_seed``),
    validation edits once each, both shuffled so that a cap keeps the proportions.
    """
    tc, root = config.training, config.training.data_dir
    splits = {d: {name: read_split(root, d, name) for name in ("train", "val", "test")} for d in tc.datasets()}
    if not tc.mixture:
        one = splits[tc.dataset]
        train, val = one["train"], one["val"]
    else:
        train = mix({d: s["train"] for d, s in splits.items()}, tc.mixture, tc.mixture_seed)
        val = mix({d: s["val"] for d, s in splits.items()}, {d: 1.0 for d in splits}, tc.mixture_seed)
    return TrainingData(
        train=train[: tc.max_train_edits],
        val=val[: tc.max_val_edits],
        world=[r for s in splits.values() for r in (*s["train"], *s["val"], *s["test"])],
    )


def train_components(
    config: ProjectConfig, data: TrainingData, work_dir: str | Path, hooks: Sequence[TrainHook] = (), *,
    only: Sequence[str] = COMPONENTS, ctx: TaskContext | None = None,
) -> EditorTrainingReport:
    """Train (or reuse / resume) the components named in ``only`` in ``work_dir``, in :data:`COMPONENTS` order.

    What is task-specific comes from the task's :class:`~serac.tasks.spec.TaskSpec` (the
    records' task): its judge (none for most tasks), base-model world, counterfactual
    examples. ``hooks`` receive each component's metrics under ``<component>/``.
    """
    unknown = sorted(set(only) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown components {unknown}; expected some of {COMPONENTS}")
    work_dir = Path(work_dir)
    specs = by_task(data.train)
    ctx = ctx or TaskContext(config=config, work_dir=work_dir)
    report = EditorTrainingReport(mixture_name(data.train))
    judges = [spec for spec, _ in specs if spec.judge is not None]

    def judge() -> dict[str, TrainResult | None]:
        if not judges:
            return {}
        spec = judges[0]  # tasks with a judge never mix (serac.tasks.MIXABLE)
        result, report.judge_accuracy = train_task_judge(config, spec.judge, work_dir, ctx, prefixed(hooks, "judge/"))
        return {"judge": result}

    steps: dict[str, Callable[[], dict[str, TrainResult | None]]] = {
        "judge": judge,
        "base": lambda: {"base": train_base(config, data.world, work_dir, prefixed(hooks, "base/"), ctx=ctx)},
        "scope": lambda: train_scope(config, data.train, data.val, work_dir, prefixed(hooks, "scope/"))[1],
        "counterfactual": lambda: {"counterfactual": train_counterfactual_model(
            config, data.train, data.val, work_dir, prefixed(hooks, "counterfactual/"), ctx=ctx)[1]},
        "variants": lambda: train_variants(config, data.train, data.val, work_dir, prefixed(hooks, "variants/"),
                                           ctx=ctx),
    }
    for component in COMPONENTS:
        if component in only:
            began = time.monotonic()
            report.record(component, steps[component](), began)
    return report


def train_editor(
    config: ProjectConfig,
    train: Sequence[EditRecord],
    val: Sequence[EditRecord],
    work_dir: str | Path,
    *,
    world: Sequence[EditRecord] | None = None,
    hooks: Sequence[TrainHook] = (),
) -> tuple[SeracEditor, EditorTrainingReport]:
    """Train (or reuse) every component (:func:`train_components`) and return an editor with an empty memory.

    ``world`` are the records whose *original* facts the offline base model learns
    (default: train + val); the editor's own components only ever see ``train``
    (and ``val`` for model selection).
    """
    work_dir = Path(work_dir)
    data = TrainingData(list(train), list(val), list(world if world is not None else [*train, *val]))
    report = train_components(config, data, work_dir, hooks)
    memory_root = work_dir / "memory"
    on_main(current_context(), lambda: shutil.rmtree(memory_root, ignore_errors=True))
    return assemble_editor(config, work_dir, EditMemory.open(memory_root, config.memory)), report


__all__ = ["COMPONENTS", "EditorTrainingReport", "TrainingData", "assemble_editor", "load_training_data",
           "pipeline_trains_base", "train_base", "train_components", "train_counterfactual_model", "train_editor",
           "train_scope", "train_variants"]
