"""The k-edits protocol computes ES and DD with the task's scorer (here: true/false accuracy drop)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from serac.data.schema import EditRecord, Example
from serac.evaluation.protocol import MethodSpec, ProtocolOptions, evaluate_editor
from serac.models.base import CallableBaseModel
from serac.tasks.scorers import TrueFalseScorer

A = EditRecord("fc", "Claim A.", "true", in_scope=[Example("A again.", "true"), Example("not A.", "false")],
               out_of_scope=[Example("X.", "true"), Example("Y.", "false")])
BASE_SAYS = {"X.": "true", "Y.": "true"}      # the base is right on X, wrong on Y
EDITED = {"Claim A.": "true", "A again.": "true", "not A.": "true", "X.": "false", "Y.": "false"}


@dataclass(frozen=True)
class Answer:
    answer: str
    score: float = 1.0


class Scripted:
    def __init__(self) -> None:
        self.memory: list[EditRecord] = []

    def edit(self, records):
        self.memory.extend(records)

    def predict(self, queries):
        return [Answer(EDITED[q]) for q in queries]


def test_true_false_scorer_through_the_protocol(tmp_path):
    base = CallableBaseModel(lambda qs: [BASE_SAYS.get(q, "false") for q in qs])
    spec = MethodSpec("scripted", lambda root: Scripted(), base)
    m = evaluate_editor(spec, [A], ks=[1], options=ProtocolOptions(progress=False, work_dir=tmp_path),
                        scorer=TrueFalseScorer()).at(1)
    assert m.dd_kind == "accuracy"
    assert m.es == pytest.approx(2 / 3) and m.es_edit == 1.0 and m.es_rephrase == 0.5
    # base accuracy 1/2 (X right, Y wrong), edited 1/2 (X wrong, Y right): no drop
    assert m.dd == pytest.approx(0.0)
    # the default for an fc record is the same accuracy-drop DD
    assert evaluate_editor(spec, [A], ks=[1], options=ProtocolOptions(progress=False, work_dir=tmp_path)).at(1).dd_kind == "accuracy"
