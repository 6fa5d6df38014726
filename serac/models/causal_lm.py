"""A frozen pretrained causal LM (SmolLM2, Llama, Qwen, ...) as the editor's base model.

The model is referenced, never trained or copied: ``describe()`` records its
name/path, revision and generation settings, and the editor rebuilds it from them.
Queries become prompts through the tokenizer's chat template when it has one
(``chat_template: auto``; ``never`` sends the raw query), are left-padded into
batches and decoded greedily with the KV cache, so answers are deterministic.
The continuation is reduced to an answer by ``answer_extraction``: the whole
text, its first line, or its first sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from serac.config import BaseModelConfig
from serac.models.hub import ensure_offline, resolve_name_or_path

CHAT_TEMPLATE_MODES = ("auto", "never")
ANSWER_EXTRACTIONS = ("full", "first_line", "first_sentence")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def extract_answer(text: str, mode: str) -> str:
    """Reduce a generated continuation to the answer ``mode`` asks for."""
    if mode not in ANSWER_EXTRACTIONS:
        raise ValueError(f"answer_extraction: unknown {mode!r}; expected one of {ANSWER_EXTRACTIONS}")
    text = text.strip()
    if mode == "full":
        return text
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if mode == "first_line":
        return line
    return _SENTENCE_END.split(line, maxsplit=1)[0].strip()


class CausalLMBase:
    """A frozen ``AutoModelForCausalLM`` answering queries by greedy generation."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        name_or_path: str,
        revision: str | None = None,
        max_input_length: int = 256,
        max_new_tokens: int = 32,
        chat_template: str = "auto",
        system_prompt: str | None = None,
        answer_extraction: str = "first_line",
        batch_size: int = 32,
    ) -> None:
        if chat_template not in CHAT_TEMPLATE_MODES:
            raise ValueError(f"chat_template: unknown {chat_template!r}; expected one of {CHAT_TEMPLATE_MODES}")
        extract_answer("", answer_extraction)  # validates the mode
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.name_or_path = name_or_path
        self.revision = revision
        self.max_input_length = max_input_length
        self.max_new_tokens = max_new_tokens
        self.chat_template = chat_template
        self.system_prompt = system_prompt
        self.answer_extraction = answer_extraction
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, name_or_path: str, device: torch.device, *, revision: str | None = None, **options: Any
    ) -> CausalLMBase:
        """Load offline; ``name_or_path`` may be a packaged alias (``smollm2``) or a local folder."""
        ensure_offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_name_or_path(name_or_path)
        if not Path(path).exists() and "/" not in path:
            raise FileNotFoundError(f"base model {name_or_path!r}: not a local path, alias or cached hub name")
        extra: dict[str, Any] = {"revision": revision} if revision else {}
        # trust_remote_code stays False: a model name must never run code shipped beside the weights.
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, **extra)
        dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False, **extra)
        return cls(model.to(device), tokenizer, name_or_path=name_or_path, revision=revision, **options)

    @classmethod
    def from_config(cls, cfg: BaseModelConfig, device: torch.device, batch_size: int = 32) -> CausalLMBase:
        return cls.from_pretrained(
            cfg.name_or_path,
            device,
            revision=cfg.revision,
            max_input_length=cfg.max_input_length,
            max_new_tokens=cfg.max_new_tokens,
            chat_template=cfg.chat_template,
            system_prompt=cfg.system_prompt,
            answer_extraction=cfg.answer_extraction,
            batch_size=batch_size,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def uses_chat_template(self) -> bool:
        return self.chat_template == "auto" and bool(getattr(self.tokenizer, "chat_template", None))

    def prompt(self, query: str) -> str:
        """The text the model continues for ``query``."""
        if not self.uses_chat_template:
            return query
        messages = [{"role": "user", "content": query}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Raw greedy continuations of ready-made prompts (chat template already applied), in order.

        Prompts are batched by length (less padding to attend over); each row's answer does
        not depend on its batch-mates (left padding under the attention mask)."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            for i, text in zip(rows, self._generate_batch([prompts[i] for i in rows])):
                out[i] = text
        return out

    @torch.inference_mode()
    def _generate_batch(self, prompts: list[str]) -> list[str]:
        tok = self.tokenizer
        side = tok.padding_side
        tok.padding_side = "left"  # generation appends on the right: every row's last token is real
        try:
            batch = tok(
                prompts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_input_length,
                add_special_tokens=not self.uses_chat_template,
            ).to(self.device)
        finally:
            tok.padding_side = side
        ids = self.model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        continuation = ids[:, batch["input_ids"].shape[1] :]
        return tok.batch_decode(continuation, skip_special_tokens=True)

    def predict(self, queries: Sequence[str]) -> list[str]:
        texts = self.generate([self.prompt(q) for q in queries])
        return [extract_answer(t, self.answer_extraction) for t in texts]

    def answer_loss(self, model: nn.Module, queries: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """Mean token NLL of ``answers`` after the prompts of ``queries``, under ``model`` (this LM or a
        fine-tuned copy of it), tokenised exactly as :meth:`predict` tokenises them (chat template,
        special tokens), each answer ended by EOS: what fine-tuning the LM to give them minimises."""
        if len(queries) != len(answers) or not queries:
            raise ValueError(f"answer_loss: {len(queries)} queries and {len(answers)} answers")
        tok = self.tokenizer
        prompts = tok([self.prompt(q) for q in queries], truncation=True, max_length=self.max_input_length,
                      add_special_tokens=not self.uses_chat_template)["input_ids"]
        targets = [list(t[: self.max_new_tokens]) + [tok.eos_token_id]
                   for t in tok(list(answers), add_special_tokens=False)["input_ids"]]
        rows = [list(p) + t for p, t in zip(prompts, targets)]
        width = max(len(r) for r in rows)
        device = next(model.parameters()).device
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (p, r) in enumerate(zip(prompts, rows)):  # right padding: positions start at 0, as in generation
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
            labels[i, len(p) : len(r)] = torch.tensor(r[len(p) :])
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(device),
                                           ignore_index=-100)

    def describe(self) -> dict[str, Any]:
        """``BaseModelConfig`` fields that rebuild this model."""
        return {
            "kind": "causal",
            "name_or_path": self.name_or_path,
            "revision": self.revision,
            "max_input_length": self.max_input_length,
            "max_new_tokens": self.max_new_tokens,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "answer_extraction": self.answer_extraction,
        }


def unwrap_causal_lm(base: Any) -> CausalLMBase | None:
    """The :class:`CausalLMBase` behind ``base``, through wrappers that keep the wrapped model as
    ``.base`` (the answer cache); None when there is none."""
    seen = base
    while not isinstance(seen, CausalLMBase) and hasattr(seen, "base"):
        seen = seen.base
    return seen if isinstance(seen, CausalLMBase) else None

