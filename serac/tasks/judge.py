"""ConvSent's judges: a sentiment classifier trained by the pipeline, and a topic score.

* The **sentiment judge** is the ``classifier`` kind of :class:`~serac.models.seq2seq.TextToText`
  (MiniLM + a classification head, labels ``negative`` / ``positive``), trained on the
  ConvSent responses of the *train* entities (``pos`` -> positive, ``neg`` -> negative);
  its accuracy is measured on the responses of held-aside entities (the test split).
* The **topic score** of a response about an entity is the largest cosine (clipped to
  [0, 1]) between the response and the entity's own dataset responses (and its name),
  embedded with the untrained MiniLM sentence encoder: 1 for a response the dataset
  gives about that entity, lower the further a response drifts from what is said about it.

ES of a ConvSent answer = P_judge(edit sentiment | response) x topic score
(:class:`~serac.tasks.scorers.SentimentScorer`); the judge is trained by
:func:`serac.training.judge.train_judge`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serac.models.seq2seq import TextToText

LABELS = ("negative", "positive")
POLARITY = {"pos": "positive", "neg": "negative"}


def judge_pairs(responses: dict[str, dict[str, list[str]]], entities: Iterable[str]) -> list[tuple[str, str]]:
    """(response, sentiment) for every response of ``entities`` (whitespace squashed, sorted, distinct)."""
    out: dict[str, str] = {}
    for entity in entities:
        entry = responses.get(entity, {})
        for key, label in POLARITY.items():
            for text in entry.get(key, []):
                text = " ".join(text.split())
                if text:
                    out.setdefault(text, label)
    return sorted(out.items())


class SentimentJudge:
    """P(positive) of texts from a trained classifier-kind TextToText."""

    def __init__(self, model: TextToText, batch_size: int = 64) -> None:
        if tuple(model.labels) != LABELS:
            raise ValueError(f"a sentiment judge needs labels {LABELS}, got {model.labels}")
        self.model = model.eval()
        self.batch_size = batch_size

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> SentimentJudge:
        return cls(TextToText.load(directory, device))

    @torch.inference_mode()
    def p_positive(self, texts: Sequence[str]) -> np.ndarray:
        t2t, out = self.model, []
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else "." for t in texts[start : start + self.batch_size]]
            enc = t2t.tokenizer(batch, padding=True, truncation=True, max_length=t2t.max_input_length,
                                return_tensors="pt")
            logits = t2t.model(input_ids=enc["input_ids"].to(t2t.device),
                               attention_mask=enc["attention_mask"].to(t2t.device)).logits
            out.append(torch.softmax(logits.float(), -1)[:, LABELS.index("positive")].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def accuracy(self, pairs: Sequence[tuple[str, str]]) -> float:
        if not pairs:
            return float("nan")
        predicted = np.where(self.p_positive([t for t, _ in pairs]) > 0.5, "positive", "negative")
        return float(np.mean([p == label for p, (_, label) in zip(predicted, pairs)]))


class TopicScore:
    """Largest cosine between a response and an entity's references, clipped to [0, 1]."""

    def __init__(self, encoder: Any, references: dict[str, list[str]], batch_size: int = 128,
                 include_name: bool = True) -> None:
        self.encoder = encoder
        self.references = references
        self.batch_size = batch_size
        self.include_name = include_name
        """False: the entity's dataset responses alone (naming the entity earns nothing by itself)."""
        self._cache: dict[str, np.ndarray] = {}

    def _refs(self, entity: str) -> np.ndarray:
        if entity not in self._cache:
            texts = ([entity] if self.include_name else []) + list(self.references.get(entity, []))
            self._cache[entity] = self.encoder.encode(texts, batch_size=self.batch_size)
        return self._cache[entity]

    def __call__(self, responses: Sequence[str], entities: Sequence[str]) -> np.ndarray:
        emb = self.encoder.encode([r if r.strip() else "." for r in responses], batch_size=self.batch_size)
        scores = [float(np.max(self._refs(e) @ v)) for v, e in zip(emb, entities)]
        return np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)


def references(responses: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    return {e: [" ".join(t.split()) for t in entry["pos"] + entry["neg"] if t.strip()] for e, entry in responses.items()}
