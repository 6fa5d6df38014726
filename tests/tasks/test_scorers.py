"""Task-aware ES / DD: exact match, true/false accuracy drop, and the ConvSent judge product."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serac.data.loaders import CONVSENT_IN_SCOPE, CONVSENT_PROMPT
from serac.tasks.scorers import (
    ExactMatchScorer,
    SentimentScorer,
    TrueFalseScorer,
    scorer_for_dd_kind,
    template_patterns,
)


def test_exact_match_scorer():
    s = ExactMatchScorer()
    assert s.edit_success(["q1", "q2"], ["Paris", "x"], ["paris", "y"]) == 0.5
    assert s.drawdown(["a", "b", "c", "d"], ["1", "2", "3", "4"], ["1", "2", "3", "x"], [None] * 4) == 0.25
    assert math.isnan(s.edit_success([], [], []))


def test_es_contains_counts_free_form_answers_that_hold_the_label():
    s = ExactMatchScorer()
    answers = ["The prime minister of the UK is currently Boris Johnson.", "Boris Johnson", "Johnsonville, Ohio",
               "Theresa May", "boris  JOHNSON!"]
    golds = ["Boris Johnson"] * 5
    assert s.edit_success(["q"] * 5, answers, golds) == pytest.approx(2 / 5)  # exact: "Boris Johnson", "boris  JOHNSON!"
    assert s.es_parts(["q"] * 5, answers, golds) == {"contains": pytest.approx(3 / 5)}  # not inside a longer word
    assert s.es_parts([], [], []) == {}


def test_true_false_scorer_is_an_accuracy_drop():
    s = TrueFalseScorer()
    assert s.edit_success(["a", "b", "c"], ["true", "false", "True"], ["true", "true", "true"]) == pytest.approx(2 / 3)
    # base right on 3/4, edited right on 2/4 -> DD 0.25; an unlabelled query does not count
    golds = ["true", "false", "true", "false", None]
    base = ["true", "false", "true", "true", "x"]
    edited = ["true", "false", "false", "true", "y"]
    assert s.drawdown(["q"] * 5, edited, base, golds) == pytest.approx(0.25)
    # an edited model that fixes base errors has negative drawdown
    assert s.drawdown(["q"] * 2, ["true", "false"], ["false", "false"], ["true", "false"]) == pytest.approx(-0.5)
    assert scorer_for_dd_kind("accuracy").dd_kind == "accuracy"
    with pytest.raises(ValueError):
        scorer_for_dd_kind("kl")


def test_template_patterns_read_the_entity():
    patterns = template_patterns((CONVSENT_PROMPT, *CONVSENT_IN_SCOPE))
    s = SentimentScorer(lambda t: np.zeros(len(t)), lambda r, e: np.ones(len(r)), patterns)
    assert s.entity_of("What do you think of Taylor Swift?") == "Taylor Swift"
    assert s.entity_of("Tell me your opinion of a.b (c)?.") == "a.b (c)?"
    assert s.entity_of("Who is the UK PM?") is None


def test_sentiment_scorer_multiplies_judged_sentiment_and_topic():
    p_pos = {"love it": 0.9, "hate it": 0.2, "meh": 0.5}
    topic = {("love it", "X"): 1.0, ("hate it", "X"): 0.5, ("meh", "Y"): 0.8}
    s = SentimentScorer(lambda texts: np.array([p_pos[t] for t in texts]),
                        lambda responses, entities: np.array([topic[(r, e)] for r, e in zip(responses, entities)]),
                        template_patterns((CONVSENT_PROMPT,)))
    queries = ["What do you think of X?", "What do you think of X?", "What do you think of Y?", "unknown"]
    answers = ["love it", "hate it", "meh", "love it"]
    golds = ["positive", "negative", "positive", "positive"]
    # 0.9*1.0, 0.8*0.5, 0.5*0.8, 0 (no topic) -> mean
    expected = (0.9 + 0.4 + 0.4 + 0.0) / 4
    assert s.edit_success(queries, answers, golds) == pytest.approx(expected)
    p_gold, t = s.parts(queries[:2], answers[:2], golds[:2])
    assert p_gold.tolist() == pytest.approx([0.9, 0.8]) and t.tolist() == [1.0, 0.5]
    assert s.drawdown(["q", "q"], ["a", "b"], ["a", "c"], [None, None]) == 0.5
    assert math.isnan(s.edit_success(["q"], ["a"], [None]))
    # ES's factors, each averaged alone (a response can be on topic with the wrong sentiment)
    parts = s.es_parts(queries, answers, golds)
    assert parts == pytest.approx({"sentiment": (0.9 + 0.8 + 0.5 + 0.9) / 4, "topic": (1.0 + 0.5 + 0.8 + 0.0) / 4})
    assert s.es_parts(["q"], ["a"], [None]) == {}
