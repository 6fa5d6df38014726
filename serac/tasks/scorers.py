"""How a task turns answers into ES and DD: one :class:`Scorer` per kind of task.

* :class:`ExactMatchScorer` (generation: qa, fact, qa_hard): ES = exact match with the
  label (and ES-contains: the label occurs in the answer); DD = fraction of out-of-scope answers that changed against the base model.
* :class:`TrueFalseScorer` (fc): ES = accuracy on in-scope claims; DD = accuracy of
  the base model minus accuracy of the edited one on out-of-scope claims.
* :class:`SentimentScorer` (convsent): ES = mean over in-scope prompts of
  P_judge(edit sentiment | response) x topic score (the paper's sentiment x topic);
  DD = fraction of out-of-scope responses that changed against the base model.

Scorers are pure given their judge; :mod:`serac.tasks.registry` picks one per task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from serac import metrics


class Scorer(Protocol):
    dd_kind: str
    """``changed`` or ``accuracy``: recorded with the metrics."""

    def edit_success(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]) -> float:
        """ES over in-scope queries (NaN for none)."""
        ...

    def drawdown(self, queries: Sequence[str], edited: Sequence[str], unedited: Sequence[str],
                 golds: Sequence[str | None]) -> float:
        """DD over out-of-scope queries (NaN for none)."""
        ...


@dataclass(frozen=True)
class ExactMatchScorer:
    dd_kind: str = "changed"

    def edit_success(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]) -> float:
        return metrics.edit_success(list(answers), list(golds))

    def es_parts(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]
                 ) -> dict[str, float]:
        """``contains``: ES for free-form answers (the label occurs in the answer, as whole words)."""
        return {"contains": metrics.contains_accuracy(list(answers), list(golds))} if answers else {}

    def drawdown(self, queries: Sequence[str], edited: Sequence[str], unedited: Sequence[str],
                 golds: Sequence[str | None]) -> float:
        return metrics.drawdown_changed(list(edited), list(unedited))


@dataclass(frozen=True)
class TrueFalseScorer:
    """Accuracy for ES; accuracy drop over the labelled out-of-scope queries for DD."""

    dd_kind: str = "accuracy"

    def edit_success(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]) -> float:
        return metrics.edit_success(list(answers), list(golds))

    def drawdown(self, queries: Sequence[str], edited: Sequence[str], unedited: Sequence[str],
                 golds: Sequence[str | None]) -> float:
        rows = [(e, u, g) for e, u, g in zip(edited, unedited, golds) if g is not None]
        return metrics.drawdown_accuracy([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def scorer_for_dd_kind(dd_kind: str) -> Scorer:
    if dd_kind == "accuracy":
        return TrueFalseScorer()
    if dd_kind == "changed":
        return ExactMatchScorer()
    raise ValueError(f"dd_kind must be 'changed' or 'accuracy', got {dd_kind!r}")


SentimentFn = Callable[[Sequence[str]], np.ndarray]
"""Texts -> P(positive) per text (the sentiment judge)."""
TopicFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]
"""(responses, topics) -> topic score in [0, 1] per response."""


def probability_of(p_positive: Sequence[float] | np.ndarray, sentiments: Sequence[str | None]) -> np.ndarray:
    """Per text, the judge's probability of its own sentiment: P(positive), or 1 - P(positive)."""
    p_pos = np.asarray(p_positive, dtype=np.float64)
    return np.where([s == "positive" for s in sentiments], p_pos, 1.0 - p_pos)


@dataclass
class SentimentScorer:
    """ConvSent: ES = P_judge(edit sentiment | response) x topic(response, entity); DD = changed responses.

    The entity of a query is read from the query by :data:`topic_patterns` (the ConvSent
    prompt templates); a query that matches none scores topic 0.
    """

    sentiment: SentimentFn
    topic: TopicFn
    topic_patterns: Sequence[re.Pattern[str]] = field(default_factory=tuple)
    dd_kind: str = "changed"

    def entity_of(self, query: str) -> str | None:
        for pattern in self.topic_patterns:
            match = pattern.fullmatch(query.strip())
            if match:
                return match.group(1)
        return None

    def parts(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]
              ) -> tuple[np.ndarray, np.ndarray]:
        """Per query: P(gold sentiment | answer) and the topic score."""
        if not answers:
            return np.zeros(0), np.zeros(0)
        p_pos = np.asarray(self.sentiment(list(answers)), dtype=np.float64)
        p_gold = probability_of(p_pos, golds)
        entities = [self.entity_of(q) for q in queries]
        known = [i for i, e in enumerate(entities) if e is not None]
        topic = np.zeros(len(answers))
        if known:
            topic[known] = self.topic([answers[i] for i in known], [entities[i] for i in known])
        return p_gold, topic

    def labelled_parts(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]
                       ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`parts` of the queries whose gold is a sentiment (others are not scored)."""
        rows = [(q, a, g) for q, a, g in zip(queries, answers, golds) if g in ("positive", "negative")]
        return self.parts([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    def edit_success(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]) -> float:
        p_gold, topic = self.labelled_parts(queries, answers, golds)
        return float(np.mean(p_gold * topic)) if len(p_gold) else float("nan")

    def es_parts(self, queries: Sequence[str], answers: Sequence[str], golds: Sequence[str | None]
                 ) -> dict[str, float]:
        """ES's two factors, each averaged alone: ``sentiment`` (P_judge(edit sentiment)) and ``topic``."""
        p_gold, topic = self.labelled_parts(queries, answers, golds)
        return {"sentiment": float(np.mean(p_gold)), "topic": float(np.mean(topic))} if len(p_gold) else {}

    def drawdown(self, queries: Sequence[str], edited: Sequence[str], unedited: Sequence[str],
                 golds: Sequence[str | None]) -> float:
        return metrics.drawdown_changed(list(edited), list(unedited))


def template_patterns(templates: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """``"What do you think of {}?"`` -> a pattern whose group 1 is the entity."""
    return tuple(re.compile(re.escape(t).replace(re.escape("{}"), "(.+)")) for t in templates)
