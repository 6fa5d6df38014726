"""An editor from a work directory: the trained components the training steps (and DVC stages) leave there.

``work_dir/base`` (only for the pipeline-trained offline base model; any other base is
used as configured), ``work_dir/scope`` and ``work_dir/counterfactual``; ``work_dir/variants/<kind>``
holds the counterfactual variants with weights that evaluation measures beside the editor's own
(``evaluation.counterfactual_variants``). Training writes them (:mod:`serac.training.editor`),
evaluation and packaging read them back from here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from serac.config import CounterfactualConfig, ProjectConfig
from serac.editor.editor import SeracEditor
from serac.memory import EditMemory
from serac.models.artifacts import CONFIG_FILE, ArtifactError
from serac.models.base import BaseModel, build_base_model
from serac.models.counterfactual import Counterfactual, CounterfactualModel
from serac.models.device import resolve_device
from serac.models.hub import OFFLINE_DEFAULT
from serac.models.in_context import KIND as IN_CONTEXT
from serac.models.in_context import InContextCounterfactual, causal_lm_of, load_counterfactual, template_of
from serac.models.lora import DEFAULT_TEMPLATE as LORA_TEMPLATE
from serac.models.scope import ScopeClassifier

BASE_DIR, SCOPE_DIR, COUNTERFACTUAL_DIR, VARIANTS_DIR = "base", "scope", "counterfactual", "variants"
TRAINED_VARIANTS = ("causal_lora",)
"""The counterfactual variants with weights of their own (trained by ``serac train --component variants``)."""
DEFAULT_LORA_LM = "smollm2"


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
    counterfactual = with_decoding(load_counterfactual(work_dir / COUNTERFACTUAL_DIR, device, base), config)
    return SeracEditor(scope, counterfactual, base, memory, config.editor)


def with_decoding(model: Counterfactual, config: ProjectConfig) -> Counterfactual:
    """``model`` decoding as params say (``counterfactual.label_hypothesis``): a decoding choice, not
    a trained one, so the project's params win over the trained artifact's; packaging saves it."""
    if isinstance(model, CounterfactualModel):
        model.label_hypothesis = config.counterfactual.label_hypothesis
    return model


def trained_variants(config: ProjectConfig) -> tuple[str, ...]:
    """The variants of ``evaluation.counterfactual_variants`` that training must fit, in their order."""
    return tuple(kind for kind in config.evaluation.counterfactual_variants if kind in TRAINED_VARIANTS)


def variant_config(config: ProjectConfig, kind: str) -> CounterfactualConfig:
    """The counterfactual section a trained variant is built from: ``config.counterfactual``'s lengths with
    the variant's kind, pretrained LM and template (``causal_lora``: ``counterfactual.lora_*``)."""
    if kind not in TRAINED_VARIANTS:
        raise ValueError(f"{kind!r} is not a trained counterfactual variant; expected one of {TRAINED_VARIANTS}")
    cf = config.counterfactual
    lm = cf.lora_name_or_path or (config.base.name_or_path if config.base.kind == "causal" else DEFAULT_LORA_LM)
    return replace(cf, kind=kind, name_or_path=lm, template=cf.lora_template or LORA_TEMPLATE, decoder_layers=None)


def variant_dir(work_dir: str | Path, kind: str) -> Path:
    return Path(work_dir) / VARIANTS_DIR / kind


def load_variants(config: ProjectConfig, work_dir: str | Path, base: BaseModel) -> dict[str, Counterfactual]:
    """``evaluation.counterfactual_variants`` as method name (``serac_<kind>``) -> counterfactual model:
    ``in_context`` on ``base``, trained ones from ``work_dir/variants/<kind>`` (ArtifactError when absent)."""
    device = resolve_device(config.editor.device)
    variants: dict[str, Counterfactual] = {}
    for kind in config.evaluation.counterfactual_variants:
        if kind == IN_CONTEXT:
            lm = causal_lm_of(base, "evaluation.counterfactual_variants")
            variants[f"serac_{kind}"] = InContextCounterfactual(lm, template_of(config.counterfactual))
            continue
        directory = variant_dir(work_dir, kind)
        if not (directory / CONFIG_FILE).is_file():
            raise ArtifactError(f"{directory}: the {kind} counterfactual variant is not trained; run "
                                f"`serac train --component variants` with the same params first")
        variants[f"serac_{kind}"] = with_decoding(CounterfactualModel.load(directory, device=device), config)
    return variants
