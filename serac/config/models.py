"""Sections of the editor's parts: scope classifier, counterfactual model, base model, editor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from serac.config.errors import ConfigError


@dataclass(frozen=True)
class ScopeConfig:
    kind: str = "embedding"
    """``embedding`` (score from the cosine of edit and query embeddings), ``cross_encoder``
    (a classifier on the pair, over the whole memory up to ``max_cross_candidates``) or
    ``rerank`` (embedding top-k, then the cross-encoder)."""
    encoder: str = "minilm"
    """Encoder backbone: ``minilm`` (offline default) or a Hugging Face name / local path."""
    max_length: int = 128
    top_k: int = 20
    """Candidates fetched from the memory index per query."""
    max_cross_candidates: int = 256
    edit_template: str = "{edit_input} {edit_label}"
    """How an edit is written out for the scope classifier."""
    rerank_above: float = 0.0
    """``rerank`` only: a query whose best embedding probability is at or below this keeps its
    embedding scores and skips the cross-encoder (it is out of scope at any threshold above
    this); 0 reranks every query. Only ambiguous queries then pay for cross-encoder passes."""
    rerank_mix: float = 0.0
    """``cross_encoder`` / ``rerank``: a candidate's scope probability is ``(1 - w) * cross +
    w * embedding`` with ``w = rerank_mix`` (an average of the two trained classifiers on the
    same pair); 0 is the cross-encoder alone. Needs no training: applied to a stored classifier."""

    def __post_init__(self) -> None:
        if self.kind not in ("embedding", "cross_encoder", "rerank"):
            raise ConfigError(f"scope.kind: unknown {self.kind!r}")
        if self.top_k < 1:
            raise ConfigError("scope.top_k must be >= 1")
        if not 0.0 <= self.rerank_above < 1.0:
            raise ConfigError(f"scope.rerank_above must be in [0, 1), got {self.rerank_above}")
        if not 0.0 <= self.rerank_mix <= 1.0:
            raise ConfigError(f"scope.rerank_mix must be in [0, 1], got {self.rerank_mix}")


COUNTERFACTUAL_KINDS = ("seq2seq", "seq2seq_copy", "causal", "causal_lora", "classifier", "in_context")


@dataclass(frozen=True)
class CounterfactualConfig:
    kind: str = "seq2seq"
    """``seq2seq``, ``seq2seq_copy`` (with a pointer-generator copy head), ``causal`` (generative),
    ``causal_lora`` (a pretrained causal LM such as ``smollm2`` with trained LoRA adapters),
    ``classifier`` (true/false tasks) or ``in_context`` (no weights: the causal base LM answers
    with the edit in its prompt)."""
    name_or_path: str = "minilm"
    """``minilm`` builds an EncoderDecoderModel warm-started from the packaged MiniLM."""
    template: str = "{edit_input} {edit_label} [SEP] {query}"
    """Input of the counterfactual model; fields edit_input, edit_label, query."""
    max_input_length: int = 128
    max_target_length: int = 32
    max_new_tokens: int = 16
    decoder_layers: int | None = None
    """For the MiniLM default: keep only this many decoder layers (None = all 6)."""
    labels: tuple[str, ...] = ("false", "true")
    """Class names of the classifier kind."""
    in_context_template: str | None = None
    """``in_context``: the prompt (fields edit_input, edit_label, query) the base LM answers;
    None: :data:`serac.models.in_context.DEFAULT_TEMPLATE`."""
    label_hypothesis: bool = False
    """Decoding: when the greedy answer is not the edit's label, the model scores both (summed token
    log-probability, EOS included) and answers with the label when the label is at least as likely.
    Greedy decoding of a small copy model can loop or stop early on a long, rare label ("Al- or or
    or ..." for "Al-Oruba") that the model itself prefers once scored as a whole. Off for tasks whose
    answers are not the label (ConvSent's responses)."""
    lora_name_or_path: str | None = None
    """The ``causal_lora`` variant (``evaluation.counterfactual_variants``): the pretrained causal LM its
    adapters train on; None: the base model's when ``base.kind`` is causal, else ``smollm2``."""
    lora_template: str | None = None
    """The ``causal_lora`` variant's input (fields edit_input, edit_label, query);
    None: :data:`serac.models.lora.DEFAULT_TEMPLATE`."""

    def __post_init__(self) -> None:
        if self.kind not in COUNTERFACTUAL_KINDS:
            raise ConfigError(f"counterfactual.kind: unknown {self.kind!r}")


@dataclass(frozen=True)
class BaseModelConfig:
    kind: str = "seq2seq"
    """``seq2seq``, ``causal``, ``classifier`` (Hugging Face models), ``callable`` or ``http``."""
    name_or_path: str = "minilm"
    """HF name or path; ``minilm`` = the offline default the pipeline trains on original facts."""
    revision: str | None = None
    callable: str | None = None
    """``module:function`` taking a list of queries, returning a list of answers."""
    url: str | None = None
    """HTTP endpoint: POST {"queries": [...]} returns {"answers": [...]}."""
    timeout_s: float = 30.0
    max_input_length: int = 128
    max_target_length: int = 32
    max_new_tokens: int = 16
    decoder_layers: int | None = None
    labels: tuple[str, ...] = ("false", "true")
    chat_template: str = "auto"
    """``causal``: ``auto`` wraps each query in the tokenizer's chat template when it has one; ``never``."""
    system_prompt: str | None = None
    """``causal``: an optional system message placed before each query (chat template only)."""
    answer_extraction: str = "first_line"
    """``causal``: the answer is the ``full`` continuation, its ``first_line`` or ``first_sentence``."""

    def __post_init__(self) -> None:
        if self.kind not in ("seq2seq", "causal", "classifier", "callable", "http"):
            raise ConfigError(f"base.kind: unknown {self.kind!r}")
        if self.chat_template not in ("auto", "never"):
            raise ConfigError(f"base.chat_template: unknown {self.chat_template!r}; expected 'auto' or 'never'")
        if self.answer_extraction not in ("full", "first_line", "first_sentence"):
            raise ConfigError(
                f"base.answer_extraction: unknown {self.answer_extraction!r}; "
                "expected 'full', 'first_line' or 'first_sentence'"
            )
        if self.kind == "callable" and not self.callable:
            raise ConfigError("base.callable is required when base.kind is 'callable'")
        if self.kind == "http" and not self.url:
            raise ConfigError("base.url is required when base.kind is 'http'")


@dataclass(frozen=True)
class EditorConfig:
    threshold: float = 0.5
    """A query is in scope when its best edit scores above this (tune on validation data)."""
    threshold_by_size: tuple[tuple[int, float], ...] = ()
    """Thresholds tuned per memory size, ``((k, threshold), ...)``: the one tuned at the size nearest
    (log scale) to the live memory wins (``threshold_for``); empty: ``threshold`` at every size."""
    device: str = "auto"
    """``auto`` (cuda, then mps, then cpu), or an explicit torch device string."""
    batch_size: int = 32
    artifact_dir: str = "artifacts/editor"
    """Where the trained editor is packaged (scope/, counterfactual/, base/, editor.json)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("editor.threshold must be within [0, 1]")
        try:
            schedule = tuple(sorted((int(k), float(t)) for k, t in self.threshold_by_size))
        except (TypeError, ValueError):
            raise ConfigError(f"editor.threshold_by_size: expected [[k, threshold], ...], got "
                              f"{self.threshold_by_size!r}") from None
        if any(k < 1 or not 0.0 <= t <= 1.0 for k, t in schedule):
            raise ConfigError("editor.threshold_by_size: each k must be >= 1, each threshold within [0, 1]")
        object.__setattr__(self, "threshold_by_size", schedule)

    def threshold_for(self, n_edits: int) -> float:
        """The scope threshold for a memory of ``n_edits`` live edits."""
        return scheduled_threshold(self.threshold_by_size, n_edits, self.threshold)


def scheduled_threshold(schedule: Sequence[tuple[int, float]], n_edits: int, default: float) -> float:
    """The threshold of ``schedule`` tuned at the memory size nearest to ``n_edits`` on a log scale
    (ties: the larger size); ``default`` for an empty schedule."""
    if not schedule:
        return default
    n = max(1, int(n_edits))
    return max(schedule, key=lambda kt: (-abs(math.log(kt[0]) - math.log(n)), kt[0]))[1]
