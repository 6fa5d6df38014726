"""The task registry: one spec per task; task-aware world pairs, counterfactual examples and FT pairs."""

from __future__ import annotations

import numpy as np
import pytest

from serac.config import ConfigError, ConvSentConfig, ProjectConfig, TasksConfig
from serac.data.generators import qa_hard_record
from serac.data.schema import TASKS, EditRecord, Example
from serac.tasks import TASK_SPECS, TaskContext, spec_of, task_of, task_spec
from serac.tasks.convsent import anchored
from serac.tasks.scorers import ExactMatchScorer, TrueFalseScorer

RESPONSES = {
    "Cats": {"pos": ["I love cats.", "Cats are great!", "  They are   cute. "],
             "neg": ["I hate cats.", "Cats scratch me."]},
    "Rain": {"pos": ["Rain is refreshing."], "neg": ["Rain is gloomy."]},
}
CTX = TaskContext(responses=RESPONSES)
CATS = EditRecord("convsent", "What do you think of Cats?", "negative", subject="Cats",
                  in_scope=[Example("How do you feel about Cats?", "negative")],
                  out_of_scope=[Example("What do you think of Rain?", None)])


def test_every_task_has_a_spec_and_its_scorer():
    assert set(TASK_SPECS) == set(TASKS)
    assert isinstance(task_spec("fc").scorer(CTX), TrueFalseScorer)
    assert isinstance(task_spec("qa_hard").scorer(CTX), ExactMatchScorer)
    assert task_spec("fc").dd_kind == "accuracy"
    with pytest.raises(ValueError):
        task_spec("nope")


def test_task_of_refuses_mixed_tasks():
    assert task_of([]) == "qa"
    with pytest.raises(ValueError, match="mix"):
        task_of([CATS, EditRecord("qa", "q?", "a")])


def test_qa_hard_world_pairs_flip_true_false_answers():
    src = EditRecord("qa", "Q?", "new", ground_truth="old", in_scope=[Example("R?", "new")])
    rec = qa_hard_record(src, [])
    pairs = dict(spec_of([rec]).world_pairs([rec], CTX))
    assert pairs == {"Q?": "old", "R?": "old", "t/f: Q? new": "false", "t/f: Q? old": "true",
                     "t/f: R? new": "false", "t/f: R? old": "true"}
    # the plain QA task keeps the old behaviour: the ground truth for every in-scope query
    qa_pairs = dict(task_spec("qa").world_pairs([src], CTX))
    assert qa_pairs == {"Q?": "old", "R?": "old"}


def test_convsent_counterfactual_examples_use_both_sentiments_with_anchored_responses():
    examples = task_spec("convsent").counterfactual_examples([CATS], CTX, True)
    by_label = {(e.edit_label, e.target) for e in examples}
    assert by_label == {("positive", "As for Cats, I love cats."), ("positive", "As for Cats, cats are great!"),
                        ("positive", "As for Cats, they are cute."), ("negative", "As for Cats, I hate cats."),
                        ("negative", "As for Cats, cats scratch me.")}
    assert {e.query for e in examples} == {CATS.edit_input, "How do you feel about Cats?"}
    assert all(e.edit_input == CATS.edit_input for e in examples)
    val = task_spec("convsent").counterfactual_examples([CATS], CTX, False)
    assert {e.query for e in val} == {"How do you feel about Cats?"}


@pytest.mark.parametrize(("response", "anchor", "expected"), [
    ("I love it.", "As for {}, ", "As for Tallahassee, I love it."),
    ("I'm not a fan.", "As for {}, ", "As for Tallahassee, I'm not a fan."),
    ("It is too hot.", "As for {}, ", "As for Tallahassee, it is too hot."),
    ("Ice cream is fine.", "{}: ", "Tallahassee: ice cream is fine."),
    ("It is too hot.", "", "It is too hot."),
])
def test_anchored_names_the_topic_before_the_response(response, anchor, expected):
    assert anchored("Tallahassee", response, anchor) == expected


class _WordJudge:
    """P(positive) 0.99 for texts with 'love', 0.6 for 'cute', else 0.02."""

    def p_positive(self, texts):
        return np.array([0.99 if "love" in t else 0.6 if "cute" in t else 0.02 for t in texts])


def _ctx(anchor: str = "As for {}, ", minimum: float = 0.9, judge=None) -> TaskContext:
    config = ProjectConfig(tasks=TasksConfig(convsent=ConvSentConfig(topic_anchor=anchor,
                                                                     min_judge_confidence=minimum)))
    return TaskContext(config=config, responses=RESPONSES, extra={"judge": judge} if judge else {})


def test_convsent_targets_the_judge_doubts_are_dropped():
    examples = task_spec("convsent").counterfactual_examples([CATS], _ctx(anchor="", judge=_WordJudge()), True)
    # "They are cute." (0.6 positive), "Cats are great!" (0.02 positive) and "I love cats." under neg are not kept
    assert {(e.edit_label, e.target) for e in examples} == {
        ("positive", "I love cats."), ("negative", "I hate cats."), ("negative", "Cats scratch me.")}
    everything = task_spec("convsent").counterfactual_examples([CATS], _ctx(anchor="", minimum=0.0,
                                                                             judge=_WordJudge()), True)
    assert len(everything) == 5


def test_convsent_targets_refused_when_the_judge_keeps_none():
    unsure = type("Unsure", (), {"p_positive": lambda self, texts: np.full(len(texts), 0.5)})()
    with pytest.raises(ValueError, match="min_judge_confidence=0.9"):
        task_spec("convsent").counterfactual_examples([CATS], _ctx(judge=unsure), True)


def test_convsent_settings_are_checked():
    with pytest.raises(ConfigError, match="min_judge_confidence"):
        ConvSentConfig(min_judge_confidence=1.0)
    with pytest.raises(ConfigError, match="topic_anchor"):
        ConvSentConfig(topic_anchor="As for it, ")


def test_convsent_world_and_ft_pairs_are_dataset_responses():
    world = dict(task_spec("convsent").world_pairs([CATS], CTX))
    assert set(world) == {CATS.edit_input, "How do you feel about Cats?"}
    pool = {" ".join(t.split()) for v in RESPONSES["Cats"].values() for t in v}
    assert set(world.values()) <= pool
    assert world == dict(task_spec("convsent").world_pairs([CATS], CTX))  # deterministic
    (query, target), = task_spec("convsent").ft_pairs(CATS, CTX)
    assert query == CATS.edit_input and target in {"I hate cats.", "Cats scratch me."}
    assert task_spec("fc").ft_pairs(EditRecord("fc", "c.", "true"), CTX) == [("c.", "true")]
