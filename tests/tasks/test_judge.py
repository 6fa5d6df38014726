"""The ConvSent judge pieces: sentence pairs, P(positive) from a classifier, the topic score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serac.models.seq2seq import TextToText
from serac.tasks.judge import LABELS, SentimentJudge, TopicScore, judge_pairs, references

RESPONSES = {"A": {"pos": ["good  one", "fine"], "neg": ["bad"]}, "B": {"pos": ["great"], "neg": ["awful", "bad"]}}


def test_judge_pairs_known_output():
    assert judge_pairs(RESPONSES, ["A"]) == [("bad", "negative"), ("fine", "positive"), ("good one", "positive")]
    # a sentence seen first with one label keeps it (sorted, distinct)
    assert judge_pairs(RESPONSES, ["A", "B"]) == [("awful", "negative"), ("bad", "negative"), ("fine", "positive"),
                                                  ("good one", "positive"), ("great", "positive")]
    assert judge_pairs(RESPONSES, ["missing"]) == []


def tiny_judge() -> SentimentJudge:
    from tiny import minilm_tokenizer, tiny_bert_config

    torch.manual_seed(0)
    t2t = TextToText.from_config("classifier", tiny_bert_config(layers=1, num_labels=2), minilm_tokenizer(),
                                 labels=LABELS)
    return SentimentJudge(t2t)


def test_judge_probabilities_and_accuracy():
    judge = tiny_judge()
    p = judge.p_positive(["i love it", "", "i hate it"])
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))
    acc = judge.accuracy([("i love it", "positive"), ("i hate it", "negative")])
    assert acc in (0.0, 0.5, 1.0)
    predicted = ["positive" if x > 0.5 else "negative" for x in judge.p_positive(["i love it", "i hate it"])]
    assert acc == np.mean([a == b for a, b in zip(predicted, ["positive", "negative"])])


def test_judge_needs_negative_positive_labels():
    from tiny import minilm_tokenizer, tiny_bert_config

    t2t = TextToText.from_config("classifier", tiny_bert_config(layers=1, num_labels=2), minilm_tokenizer(),
                                 labels=("false", "true"))
    with pytest.raises(ValueError):
        SentimentJudge(t2t)


class FakeEncoder:
    """Unit vectors by keyword: texts with 'cat' point one way, 'car' another, anything else a third."""

    def encode(self, texts, batch_size=128):
        def vec(t):
            t = t.lower()  # the entity name is a reference too
            return [1.0, 0, 0] if "cat" in t else [0, 1.0, 0] if "car" in t else [0, 0, 1.0]

        return np.array([vec(t) for t in texts], dtype=np.float32)


def test_topic_score_is_the_best_cosine_to_the_entity_references():
    topic = TopicScore(FakeEncoder(), {"Cats": ["my cat"], "Cars": ["fast car"]})
    scores = topic(["cat food", "car wash", "hello"], ["Cats", "Cats", "Cars"])
    assert scores.tolist() == [1.0, 0.0, 0.0]
    assert references({"E": {"pos": [" a  b "], "neg": ["", "c"]}}) == {"E": ["a b", "c"]}


def test_topic_score_without_the_name_counts_only_the_dataset_responses():
    refs = {"Cats": ["hello there"]}  # nothing about cats in the responses: only the name says "cat"
    with_name = TopicScore(FakeEncoder(), refs)
    without = TopicScore(FakeEncoder(), refs, include_name=False)
    assert with_name(["As for Cats, hi."], ["Cats"]).tolist() == [1.0]
    assert without(["As for Cats, hi."], ["Cats"]).tolist() == [0.0]
    assert without(["well, hello"], ["Cats"]).tolist() == [1.0]
