"""The text-to-text kinds: how each model family is loaded, trained and decoded.

:data:`KINDS` is the registry :class:`~serac.models.seq2seq.TextToText` looks its ``kind`` up
in (``CounterfactualConfig.kind`` / ``BaseModelConfig.kind`` name an entry); each entry
holds the transformers auto class and the kind's loss and greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from serac.models.copy_head import attach_copy_head
from serac.models.lora import attach_lora

if TYPE_CHECKING:
    from serac.models.seq2seq import TextToText

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Kind:
    """How one family of models is loaded, trained and decoded."""

    auto_class_name: str
    loss: Callable[[TextToText, list[str], list[str]], torch.Tensor]
    generate: Callable[[TextToText, list[str], int], list[str]]
    logprob: Callable[[TextToText, list[str], list[str]], torch.Tensor] | None = None
    """Per example: the summed log-probability of the target's tokens and its EOS (None: the kind
    has no token-level likelihood, e.g. the classifier)."""
    attach: Callable[[nn.Module], nn.Module] | None = None
    """Adds the kind's own modules (e.g. a copy head) to a freshly built transformers model."""
    adapter_only: bool = False
    """The artifact keeps only the trainable adapter weights and references the pretrained base."""

    def auto_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_class_name)

    def build_from_config(self, hf_config: Any) -> nn.Module:
        model = self.auto_class().from_config(hf_config, trust_remote_code=False)
        return self.attach(model) if self.attach is not None else model


def _encode_inputs(t2t: TextToText, inputs: list[str]) -> dict[str, torch.Tensor]:
    enc = t2t.tokenizer(
        inputs, padding=True, truncation=True, max_length=t2t.max_input_length, return_tensors="pt"
    )
    # token_type_ids are all zero for single texts; not every model accepts them.
    return {"input_ids": enc["input_ids"].to(t2t.device), "attention_mask": enc["attention_mask"].to(t2t.device)}


def _target_ids(t2t: TextToText, targets: list[str]) -> list[list[int]]:
    """Target tokens without special tokens, truncated, ending with EOS."""
    ids = t2t.tokenizer(targets, add_special_tokens=False)["input_ids"]
    return [list(x[: t2t.max_target_length - 1]) + [t2t.eos_token_id] for x in ids]


def _pad(rows: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    width = max(len(r) for r in rows)
    padded = [([value] * (width - len(r)) + r) if left else (r + [value] * (width - len(r))) for r in rows]
    return torch.tensor(padded, dtype=torch.long)


def _decode(t2t: TextToText, ids: torch.Tensor) -> list[str]:
    return [text.strip() for text in t2t.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def _teacher_forcing(t2t: TextToText, inputs: list[str], targets: list[str]) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Encoder inputs, padded labels and the shifted decoder inputs of one seq2seq batch."""
    enc = _encode_inputs(t2t, inputs)
    labels = _pad(_target_ids(t2t, targets), IGNORE_INDEX).to(t2t.device)
    # Shift the labels ourselves (the HF EncoderDecoderModel warns on every call when given labels).
    return enc, labels, t2t.model.prepare_decoder_input_ids_from_labels(labels=labels)


def _seq2seq_logits(t2t: TextToText, inputs: list[str], targets: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder logits at every target position (teacher forcing) and the padded labels."""
    enc, labels, decoder_input_ids = _teacher_forcing(t2t, inputs, targets)
    decoder_mask = (labels != IGNORE_INDEX).long()
    logits = t2t.model(**enc, decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_mask).logits
    return logits, labels


def _seq2seq_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits, labels = _seq2seq_logits(t2t, inputs, targets)
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def _summed(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row: the sum of ``log_probs`` (batch, length, vocab) at ``labels`` (IGNORE_INDEX skipped)."""
    mask = labels != IGNORE_INDEX
    picked = log_probs.float().gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def _seq2seq_logprob(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits, labels = _seq2seq_logits(t2t, inputs, targets)
    return _summed(F.log_softmax(logits.float(), dim=-1), labels)


def _greedy(t2t: TextToText, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new: int) -> torch.Tensor:
    return t2t.model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new,
        do_sample=False,
        num_beams=1,
        eos_token_id=t2t.eos_token_id,
        pad_token_id=t2t.pad_token_id,
    )


def _seq2seq_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    enc = _encode_inputs(t2t, inputs)
    return _decode(t2t, _greedy(t2t, enc["input_ids"], enc["attention_mask"], max_new_tokens))


def _copy_log_probs(t2t: TextToText, inputs: list[str], targets: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy head's mixed log-distribution at every target position, and the padded labels."""
    enc, labels, decoder_input_ids = _teacher_forcing(t2t, inputs, targets)
    out = t2t.model(
        **enc, decoder_input_ids=decoder_input_ids, decoder_attention_mask=(labels != IGNORE_INDEX).long(),
        output_hidden_states=True,
    )
    log_probs = t2t.model.copy_head(
        out.decoder_hidden_states[-1], out.encoder_last_hidden_state, enc["attention_mask"], enc["input_ids"], out.logits,
        decoder_input_ids,
    )
    return log_probs, labels


def _copy_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    log_probs, labels = _copy_log_probs(t2t, inputs, targets)
    return F.nll_loss(log_probs.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


def _copy_logprob(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    return _summed(*_copy_log_probs(t2t, inputs, targets))


def _copy_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    """Greedy decoding over the copy head's mixed distribution (no KV cache: answers are short)."""
    model = t2t.model
    enc = _encode_inputs(t2t, inputs)
    encoder_outputs = model.get_encoder()(**enc)
    start = model.config.decoder_start_token_id
    if start is None:
        start = model.generation_config.decoder_start_token_id
    ids = torch.full((len(inputs), 1), int(start), dtype=torch.long, device=t2t.device)
    done = torch.zeros(len(inputs), dtype=torch.bool, device=t2t.device)
    for _ in range(max_new_tokens):
        out = model(
            encoder_outputs=encoder_outputs, attention_mask=enc["attention_mask"], decoder_input_ids=ids,
            output_hidden_states=True,
        )
        log_probs = model.copy_head(
            out.decoder_hidden_states[-1][:, -1:], encoder_outputs.last_hidden_state, enc["attention_mask"],
            enc["input_ids"], out.logits[:, -1:], ids,
        )
        nxt = log_probs[:, 0].argmax(-1).masked_fill(done, t2t.pad_token_id)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt == t2t.eos_token_id
        if bool(done.all()):
            break
    return _decode(t2t, ids[:, 1:])


def _prompt_ids(t2t: TextToText, inputs: list[str]) -> list[list[int]]:
    ids = t2t.tokenizer(inputs, truncation=True, max_length=t2t.max_input_length)["input_ids"]
    return [list(x) for x in ids]


def _causal_batch(t2t: TextToText, inputs: list[str], targets: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of prompt + target rows (right-padded) and their labels (the prompt's masked)."""
    prompts, answers = _prompt_ids(t2t, inputs), _target_ids(t2t, targets)
    rows = [p + a for p, a in zip(prompts, answers)]
    label_rows = [[IGNORE_INDEX] * len(p) + a for p, a in zip(prompts, answers)]
    # Right padding: positions start at 0 as in generation, whose left padding gets
    # position ids from the attention mask.
    input_ids = _pad(rows, t2t.pad_token_id).to(t2t.device)
    attention_mask = _pad([[1] * len(r) for r in rows], 0).to(t2t.device)
    labels = _pad(label_rows, IGNORE_INDEX).to(t2t.device)
    return t2t.model(input_ids=input_ids, attention_mask=attention_mask).logits, labels


def _causal_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits, labels = _causal_batch(t2t, inputs, targets)
    # Token t predicts token t+1.
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
    )


def _causal_logprob(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits, labels = _causal_batch(t2t, inputs, targets)
    return _summed(F.log_softmax(logits[:, :-1].float(), dim=-1), labels[:, 1:])


def _causal_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    prompts = _prompt_ids(t2t, inputs)
    input_ids = _pad(prompts, t2t.pad_token_id, left=True).to(t2t.device)
    attention_mask = _pad([[1] * len(p) for p in prompts], 0, left=True).to(t2t.device)
    out = _greedy(t2t, input_ids, attention_mask, max_new_tokens)
    return _decode(t2t, out[:, input_ids.shape[1] :])  # only the continuation, not the prompt


def _label_indices(t2t: TextToText, targets: list[str]) -> torch.Tensor:
    # Case-insensitive: uncased tokenizers and human-written labels ("True") must match ("true").
    index = {label.strip().lower(): i for i, label in enumerate(t2t.labels)}
    unknown = sorted({t for t in targets if t.strip().lower() not in index})
    if unknown:
        raise ValueError(f"classifier targets {unknown[:5]} are not among the labels {list(t2t.labels)}")
    return torch.tensor([index[t.strip().lower()] for t in targets], device=t2t.device)


def _classifier_loss(t2t: TextToText, inputs: list[str], targets: list[str]) -> torch.Tensor:
    logits = t2t.model(**_encode_inputs(t2t, inputs)).logits
    return F.cross_entropy(logits.float(), _label_indices(t2t, targets))


def _classifier_generate(t2t: TextToText, inputs: list[str], max_new_tokens: int) -> list[str]:
    logits = t2t.model(**_encode_inputs(t2t, inputs)).logits
    return [t2t.labels[i] for i in logits.argmax(-1).tolist()]


KINDS: dict[str, Kind] = {
    "seq2seq": Kind("AutoModelForSeq2SeqLM", _seq2seq_loss, _seq2seq_generate, _seq2seq_logprob),
    "seq2seq_copy": Kind("AutoModelForSeq2SeqLM", _copy_loss, _copy_generate, _copy_logprob, attach_copy_head),
    "causal": Kind("AutoModelForCausalLM", _causal_loss, _causal_generate, _causal_logprob),
    "causal_lora": Kind("AutoModelForCausalLM", _causal_loss, _causal_generate, _causal_logprob, attach_lora,
                        adapter_only=True),
    "classifier": Kind("AutoModelForSequenceClassification", _classifier_loss, _classifier_generate),
}
"""The registry of text-to-text kinds; ``CounterfactualConfig.kind`` / ``BaseModelConfig.kind`` index it."""


def check_kind(kind: str) -> str:
    """``kind`` when registered, else ValueError listing the known kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown text-to-text kind {kind!r}; expected one of {sorted(KINDS)}")
    return kind
