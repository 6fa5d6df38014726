"""The paper's baselines (SERAC, sec. 5), run by the same protocol and reported in the same shape.

* ``unedited``: the base model alone; edits are accepted and ignored. ES is how often the
  base already gives the new label; DD is 0 by construction but computed like any other.
* ``lu`` (lookup cache): the nearest stored edit by embedding cosine answers with its
  label when the cosine is above a threshold, otherwise the base model answers. The
  encoder is a plain sentence encoder (by default the *untrained* MiniLM the scope
  classifier starts from), and the edit's ``edit_input`` is what gets embedded.
* ``ft`` (fine-tuning): a copy of the base model fine-tuned on the group's edits (edit
  input -> edit label) answers every query. For a Hugging Face base model
  (:class:`~serac.models.base.HFBaseModel`) the whole copy trains; for a causal LM
  (SmolLM2), LoRA adapters on the copy, merged after training; other bases are reported
  as skipped.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from serac.config import EVALUATION_BASELINES, EvaluationConfig, MemoryConfig, TrainConfig
from serac.data.schema import EditRecord
from serac.editor import Prediction, SeracEditor
from serac.evaluation.groups import BaseAnswers
from serac.evaluation.protocol import MethodSpec, ProtocolOptions, evaluate_editor, serac_method
from serac.evaluation.results import MethodResult
from serac.memory import AddResult, EditMemory
from serac.models.base import BaseModel, HFBaseModel
from serac.models.causal_lm import CausalLMBase, unwrap_causal_lm
from serac.models.counterfactual import Counterfactual
from serac.models.encoder import TextEncoder
from serac.models.lora import attach_lora
from serac.models.optim import StepSampler, autocast_context, lr_at
from serac.models.seq2seq import TextToText
from serac.tasks.scorers import Scorer


def _base_predictions(base: BaseModel, queries: list[str]) -> list[Prediction]:
    return [Prediction(q, a, "base", None, 0.0) for q, a in zip(queries, base.predict(queries))]


class UneditedModel:
    """The base model alone: ``edit`` records nothing, ``predict`` is the base model's answer."""

    def __init__(self, base: BaseModel) -> None:
        self.base = base

    def edit(self, records: Sequence[EditRecord]) -> None:
        return None

    def predict(self, queries: Sequence[str]) -> list[Prediction]:
        return _base_predictions(self.base, list(queries))


def lookup_fingerprint(encoder: TextEncoder) -> str:
    """Memory fingerprint of lookup embeddings (edit inputs, not the scope's edit template)."""
    return "lookup-edit-input:" + encoder.fingerprint()


class LookupEditor:
    """Nearest edit by cosine of ``edit_input`` and query embeddings; its label if above ``threshold``.

    ``Prediction.score`` is that cosine (the protocol's scope metrics use it against
    ``threshold``); ``routed_to`` is ``counterfactual`` when the edit's label answered.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        base: BaseModel,
        memory: EditMemory,
        threshold: float = 0.6,
        *,
        batch_size: int = 32,
        fingerprint: str | None = None,
    ) -> None:
        self.encoder = encoder
        self.base = base
        self.memory = memory
        self.threshold = threshold
        self.batch_size = batch_size
        self.fingerprint = fingerprint or lookup_fingerprint(encoder)

    def edit(self, records: Sequence[EditRecord]) -> AddResult:
        records = list(records)
        emb = self.encoder.encode([r.edit_input for r in records], batch_size=self.batch_size)
        return self.memory.add(records, emb, self.fingerprint)

    def predict(self, queries: Sequence[str]) -> list[Prediction]:
        queries = list(queries)
        if not queries:
            return []
        if len(self.memory) == 0:
            return _base_predictions(self.base, queries)
        hits = self.memory.search(self.encoder.encode(queries, batch_size=self.batch_size), 1)
        best = [h[0] if h else None for h in hits]
        answers: list[str | None] = [
            self.memory.get(h.edit_id).edit_label if h is not None and h.score > self.threshold else None for h in best
        ]
        base_rows = [i for i, a in enumerate(answers) if a is None]
        if base_rows:
            for i, a in zip(base_rows, self.base.predict([queries[i] for i in base_rows])):
                answers[i] = a
        from_base = set(base_rows)
        return [
            Prediction(q, str(a), "base" if i in from_base else "counterfactual",
                       h.edit_id if h is not None else None, float(h.score) if h is not None else 0.0)
            for i, (q, a, h) in enumerate(zip(queries, answers, best))
        ]


def fine_tune(
    model: TextToText | _AdaptedLM,
    pairs: Sequence[tuple[str, str]],
    *,
    steps: int,
    lr: float,
    batch_size: int = 32,
    seed: int = 0,
    clip_norm: float = 1.0,
) -> list[float]:
    """Fine-tune ``model`` in place on (input, target) pairs for ``steps`` AdamW steps; returns the losses.

    Not :func:`serac.training.loop.train_loop`: that loop ends every run with a checkpoint
    (weights + optimizer state on disk), and the protocol fine-tunes a fresh copy per group,
    hundreds of groups at k=1, so the writes would dominate the evaluation. The pieces that
    matter are the same: the step sampler, the schedule (no warm-up, cosine to 10%), clipping.
    """
    pairs = list(pairs)
    cfg = TrainConfig(max_steps=steps, batch_size=min(batch_size, len(pairs)), lr=lr, warmup_steps=0,
                      clip_norm=clip_norm, seed=seed)
    torch.manual_seed(seed)
    sampler = StepSampler(len(pairs), cfg.batch_size, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses: list[float] = []
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_at(step, cfg)
        batch = [pairs[i] for i in sampler.batch(step)]
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(cfg, model.device):
            loss = model.loss([x for x, _ in batch], [y for _, y in batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


EditPairs = Callable[[EditRecord], list[tuple[str, str]]]
"""What the FT baseline trains on per edit (task-aware: ``serac.tasks.spec.TaskSpec.ft_pairs``)."""


def edit_pairs(record: EditRecord) -> list[tuple[str, str]]:
    """The default FT data of an edit: its input -> its label."""
    return [(record.edit_input, record.edit_label)]


class FineTuneEditor:
    """A copy of a HF base model, fine-tuned on the edits it is given; the original stays untouched.

    Each ``edit`` call fine-tunes a fresh copy of the current model on that call's edits
    (so repeated calls edit sequentially); ``predict`` answers with the copy.
    """

    base_type: type = HFBaseModel
    """The base models this editor can fine-tune."""

    def __init__(self, base: HFBaseModel | CausalLMBase, *, steps: int = 20, lr: float = 1e-4, batch_size: int = 32,
                 seed: int = 0, pairs: EditPairs | None = None) -> None:
        if not isinstance(base, self.base_type):
            raise TypeError(f"fine-tuning needs an {self.base_type.__name__}, got {type(base).__name__}")
        self.base = base
        self.model = base
        self.steps, self.lr, self.batch_size, self.seed = steps, lr, batch_size, seed
        self.pairs = pairs or edit_pairs
        self.losses: list[float] = []

    def edit(self, records: Sequence[EditRecord]) -> list[float]:
        records = list(records)
        if not records:
            return []
        current = self.model.text_to_text
        # The tokenizer is shared, not copied: fine-tuning never changes it.
        tuned = copy.deepcopy(current, memo={id(current.tokenizer): current.tokenizer})
        tuned.requires_grad_(True)
        self.losses = fine_tune(tuned, [p for r in records for p in self.pairs(r)], steps=self.steps, lr=self.lr,
                                batch_size=self.batch_size, seed=self.seed)
        self.model = HFBaseModel(tuned, name_or_path=self.base.name_or_path, revision=self.base.revision,
                                 batch_size=self.base.batch_size, max_new_tokens=self.base.max_new_tokens)
        return self.losses

    def predict(self, queries: Sequence[str]) -> list[Prediction]:
        return _base_predictions(self.model, list(queries))


class _AdaptedLM:
    """What :func:`fine_tune` trains: a copy of a causal base LM, its loss the base's answer loss."""

    def __init__(self, model: torch.nn.Module, base: CausalLMBase) -> None:
        self.model, self.base = model, base

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def parameters(self):
        return self.model.parameters()

    def train(self) -> None:
        self.model.train()

    def eval(self) -> None:
        self.model.eval()

    def loss(self, inputs: Sequence[str], targets: Sequence[str]) -> torch.Tensor:
        return self.base.answer_loss(self.model, inputs, targets)


class LoRAFineTuneEditor(FineTuneEditor):
    """FT for a causal base LM: a copy of it with LoRA adapters (:func:`serac.models.lora.attach_lora`)
    trained on the edits, prompts tokenised exactly as the base tokenises them (its chat template),
    targets the labels; the original stays untouched.

    Each ``edit`` call adapts a copy of the current model and merges the adapters into it
    afterwards (so repeated calls edit sequentially, as :class:`FineTuneEditor` does);
    ``predict`` generates with the copy under the base's own settings and answer extraction.
    """

    base_type = CausalLMBase

    def edit(self, records: Sequence[EditRecord]) -> list[float]:
        records = list(records)
        if not records:
            return []
        torch.manual_seed(self.seed)  # the adapters' initialisation
        adapted = attach_lora(copy.deepcopy(self.model.model))
        pairs = [p for r in records for p in self.pairs(r)]
        self.losses = fine_tune(_AdaptedLM(adapted, self.base), pairs, steps=self.steps, lr=self.lr,
                                batch_size=self.batch_size, seed=self.seed)
        b = self.base
        self.model = CausalLMBase(adapted.merge_and_unload(), b.tokenizer, name_or_path=b.name_or_path,
                                  revision=b.revision, max_input_length=b.max_input_length,
                                  max_new_tokens=b.max_new_tokens, chat_template=b.chat_template,
                                  system_prompt=b.system_prompt, answer_extraction=b.answer_extraction,
                                  batch_size=b.batch_size)
        return self.losses


# ------------------------------------------------------------------ as protocol methods


def unedited_method(base: BaseModel, *, name: str = "unedited") -> MethodSpec:
    return MethodSpec(name, lambda root: UneditedModel(base), base, threshold=None)


def lookup_method(
    encoder: TextEncoder,
    base: BaseModel,
    *,
    threshold: float = 0.6,
    memory_config: MemoryConfig | None = None,
    batch_size: int = 32,
    name: str = "lu",
) -> MethodSpec:
    """LU with a fresh memory per group; the encoder and base are shared, never reloaded."""
    mem_config = memory_config or MemoryConfig()
    fingerprint = lookup_fingerprint(encoder)

    def factory(root: Path) -> LookupEditor:
        memory = EditMemory.open(root, dataclasses.replace(mem_config, root=str(root)))
        return LookupEditor(encoder, base, memory, threshold, batch_size=batch_size, fingerprint=fingerprint)

    return MethodSpec(name, factory, base, threshold)


def finetune_method(
    base: BaseModel, *, steps: int = 20, lr: float = 1e-4, batch_size: int = 32, seed: int = 0, name: str = "ft",
    pairs: EditPairs | None = None,
) -> MethodSpec:
    """FT on each group: the whole copied model for an HFBaseModel, LoRA adapters for a causal LM
    (also behind the answer cache); reported as skipped (with the reason) for any other base."""
    causal = unwrap_causal_lm(base)
    if causal is not None:
        return MethodSpec(name, lambda root: LoRAFineTuneEditor(causal, steps=steps, lr=lr, batch_size=batch_size,
                                                                seed=seed, pairs=pairs), base)
    if not isinstance(base, HFBaseModel):
        kind = base.describe().get("kind", type(base).__name__)
        return MethodSpec(name, None, base, skip_reason=(
            f"FT needs a Hugging Face base model (HFBaseModel or a causal LM) to fine-tune; this base is {kind!r}"))
    return MethodSpec(name, lambda root: FineTuneEditor(base, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                                        pairs=pairs), base)


def baseline_methods(
    base: BaseModel,
    config: EvaluationConfig,
    *,
    encoder: TextEncoder | None = None,
    memory_config: MemoryConfig | None = None,
    ft_pairs: EditPairs | None = None,
) -> list[MethodSpec]:
    """The baselines named in ``config.baselines``, in that order (``lu`` needs ``encoder``)."""
    specs = []
    for name in config.baselines:
        if name == "unedited":
            specs.append(unedited_method(base))
        elif name == "lu":
            if encoder is None:
                raise ValueError("the lookup baseline needs a sentence encoder")
            specs.append(lookup_method(encoder, base, threshold=config.lu_threshold, memory_config=memory_config,
                                       batch_size=config.batch_size))
        elif name == "ft":
            specs.append(finetune_method(base, steps=config.ft_steps, lr=config.ft_lr,
                                         batch_size=config.ft_batch_size, seed=config.seed, pairs=ft_pairs))
        else:
            raise ValueError(f"unknown baseline {name!r}; expected one of {EVALUATION_BASELINES}")
    return specs


def all_methods(
    editor: SeracEditor,
    config: EvaluationConfig,
    *,
    encoder: TextEncoder | None = None,
    ft_pairs: EditPairs | None = None,
    variants: Mapping[str, Counterfactual] | None = None,
) -> list[MethodSpec]:
    """SERAC, its ``variants`` (other counterfactual models) and the configured baselines.

    ``encoder`` (lookup baseline) defaults to the untrained backbone the editor's scope
    classifier was built from (``scope.encoder`` in its config), loaded once."""
    if encoder is None and "lu" in config.baselines:
        scope_cfg = editor.scope.config
        encoder = TextEncoder.from_pretrained(scope_cfg.encoder, max_length=scope_cfg.max_length)
        encoder.to(editor.scope.embedding.encoder.device)
    methods = [serac_method(editor)] + [serac_method(editor, name=name, counterfactual=cf)
                                        for name, cf in (variants or {}).items()]
    return methods + baseline_methods(editor.base, config, encoder=encoder, memory_config=editor.memory.config,
                                      ft_pairs=ft_pairs)


def evaluate_all(
    editor: SeracEditor,
    test_records: Sequence[EditRecord],
    config: EvaluationConfig = EvaluationConfig(),
    *,
    encoder: TextEncoder | None = None,
    task: str | None = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    scorer: Scorer | None = None,
    ft_pairs: EditPairs | None = None,
    distractors: Sequence[EditRecord] = (),
    locality_kinds: Mapping[str, str] | None = None,
    default_kind: str = "dataset",
    variants: Mapping[str, Counterfactual] | None = None,
) -> list[MethodResult]:
    """SERAC and the configured baselines on the same groups, sharing the base model's cached answers.

    ``encoder`` (lookup baseline) defaults to the untrained backbone the editor's scope
    classifier was built from (``scope.encoder`` in its config), loaded once. ``distractors``,
    ``locality_kinds`` and ``default_kind`` as for :func:`~serac.evaluation.protocol.evaluate_editor`.
    ``variants`` (method name -> counterfactual model) are SERAC again with the same scope
    classifier, threshold and base model but another counterfactual model (``serac_in_context``).
    """
    methods = all_methods(editor, config, encoder=encoder, ft_pairs=ft_pairs, variants=variants)
    base_answers = BaseAnswers(editor.base, config.batch_size)
    options = ProtocolOptions.of(config, work_dir=work_dir, progress=progress)
    return [evaluate_editor(method, test_records, config.ks, options, task=task, base_answers=base_answers,
                            scorer=scorer, distractors=distractors, locality_kinds=locality_kinds,
                            default_kind=default_kind) for method in methods]
