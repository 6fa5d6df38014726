"""Pure metric functions, as the SERAC paper defines them.

- Edit Success (ES): accuracy of the edited model on in-scope inputs.
  ES-contains is the free-form variant: the label occurs in the answer.
- Drawdown (DD): for generative tasks, the fraction of out-of-scope inputs whose
  prediction changed against the unedited base model; for true/false tasks, the
  drop in accuracy on out-of-scope inputs.
- Scope classifier: precision, recall, false-positive rate and AUROC.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = ".,;:!?\"'`()[]"


def normalize_answer(text: str | None) -> str:
    """Case-, accent-width- and whitespace-insensitive form (MiniLM is uncased)."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFKC", text).lower().strip().strip(_EDGE_PUNCT).strip()
    return _SPACE.sub(" ", text)


def exact_match(prediction: str | None, gold: str | None) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


_NON_WORD = re.compile(r"[^\w]+")


def _words(text: str | None) -> str:
    return " ".join(_NON_WORD.sub(" ", normalize_answer(text)).split())


def contains_match(prediction: str | None, gold: str | None) -> bool:
    """The gold answer's words occur, in order and whole, in the prediction (free-form answers:
    "The prime minister is Boris Johnson." contains "Boris Johnson"; "Johnsonville" does not)."""
    gold_words = _words(gold)
    return bool(gold_words) and f" {gold_words} " in f" {_words(prediction)} "


def contains_accuracy(predictions: Sequence[str | None], golds: Sequence[str | None]) -> float:
    """Fraction of predictions that contain their gold answer (:func:`contains_match`); NaN for none."""
    _same_length(predictions, golds)
    if not predictions:
        return float("nan")
    return float(np.mean([contains_match(p, g) for p, g in zip(predictions, golds)]))


def accuracy(predictions: Sequence[str | None], golds: Sequence[str | None]) -> float:
    """Fraction of exact matches; NaN for no examples (never a silent 0 or 1)."""
    _same_length(predictions, golds)
    if not predictions:
        return float("nan")
    return float(np.mean([exact_match(p, g) for p, g in zip(predictions, golds)]))


def edit_success(predictions: Sequence[str], golds: Sequence[str]) -> float:
    """ES: accuracy on in-scope inputs (exact match for generation, accuracy for true/false)."""
    return accuracy(predictions, golds)


def drawdown_changed(edited: Sequence[str], unedited: Sequence[str]) -> float:
    """DD for generative tasks: fraction of out-of-scope predictions that changed."""
    _same_length(edited, unedited)
    if not edited:
        return float("nan")
    return float(np.mean([not exact_match(a, b) for a, b in zip(edited, unedited)]))


def drawdown_accuracy(edited: Sequence[str], unedited: Sequence[str], golds: Sequence[str]) -> float:
    """DD for true/false tasks: accuracy of the unedited model minus that of the edited one."""
    return accuracy(unedited, golds) - accuracy(edited, golds)


def scope_metrics(scores: Sequence[float], in_scope: Sequence[bool], threshold: float) -> dict[str, float]:
    """Precision, recall, false-positive rate at ``threshold`` and threshold-free AUROC."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(in_scope, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.shape[0]} scores but {y.shape[0]} labels")
    pred = s > threshold
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    pos, neg = int(y.sum()), int((~y).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / pos if pos else float("nan"),
        "fpr": fp / neg if neg else float("nan"),
        "auroc": auroc(s, y),
    }


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve via the rank-sum statistic (ties count one half)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99/mean in milliseconds."""
    if not seconds:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} vs {len(b)}")
