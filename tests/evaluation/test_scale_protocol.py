"""Memories larger than the test split (distractors), DD per locality kind, per-size thresholds."""

from __future__ import annotations

import pytest

from serac.config import ConfigError, EditorConfig
from serac.config.models import scheduled_threshold
from serac.data.schema import EditRecord, Example
from serac.evaluation.locality import SAME_SUBJECT, with_same_subject
from serac.evaluation.protocol import MethodSpec, ProtocolOptions, evaluate_editor
from tests.evaluation.test_protocol import BASE, Answer, ScriptedMethod

QUIET = ProtocolOptions(progress=False)

T1 = EditRecord("qa", "t1?", "L1", out_of_scope=[Example("far1?", "f"), Example("near1?", None)])
T2 = EditRecord("qa", "t2?", "L2", out_of_scope=[Example("far2?", "f")])
DISTRACTORS = [EditRecord("qa", f"d{i}?", f"D{i}", in_scope=[Example(f"d{i}b?", f"D{i}")]) for i in range(5)]


class Recorder(ScriptedMethod):
    """Answers every edit input with its label; ``near1?`` is captured (changed) once a distractor is in memory."""

    asked: list[list[str]] = []

    def predict(self, queries):
        Recorder.asked.append(list(queries))
        labels = {r.edit_input: r.edit_label for r in self.memory}
        crowded = len(self.memory) > 2
        return [Answer(labels.get(q, "changed" if q == "near1?" and crowded else "base:" + q), 0.9 if q in labels
                       else (0.8 if q == "near1?" and crowded else 0.1)) for q in queries]


def test_k_above_the_test_split_adds_distractors_that_are_never_queried():
    Recorder.asked = []
    spec = MethodSpec("rec", lambda root: Recorder(), BASE, threshold=0.5)
    result = evaluate_editor(spec, [T1, T2], ks=[2, 5, 7, 8], options=QUIET, distractors=[*DISTRACTORS, T1],
                             locality_kinds={"near1?": "same_subject"}, default_kind="unrelated")
    assert [m.k for m in result.per_k] == ["2", "5", "7"] and "k=8 skipped" in result.note  # 2 + 5 distinct others
    at5 = result.at(5)
    assert (at5.edits_per_group, at5.n_groups, at5.n_edit_queries) == (5, 1, 2)
    asked = {q for batch in Recorder.asked for q in batch}
    assert not any(q.startswith("d") for q in asked)  # distractors fill the memory, nobody asks about them
    # DD split by kind: only the same-subject query changes, and only in the crowded memories
    assert result.at(2).dd_by_kind == {"same_subject": 0.0, "n_same_subject": 1, "unrelated": 0.0, "n_unrelated": 2}
    assert at5.dd_by_kind["same_subject"] == 1.0 and at5.dd_by_kind["unrelated"] == 0.0
    assert at5.dd == pytest.approx(1 / 3) and at5.fpr == pytest.approx(1 / 3)
    assert at5.kind_scalars() == {"dd_same_subject": 1.0, "n_out_same_subject": 1, "dd_unrelated": 0.0,
                                  "n_out_unrelated": 2}


def test_a_threshold_schedule_picks_the_size_nearest_on_a_log_scale():
    schedule = ((10, 0.5), (1000, 0.9), (10000, 0.97))
    assert scheduled_threshold(schedule, 1, 0.1) == 0.5
    assert scheduled_threshold(schedule, 50, 0.1) == 0.5
    assert scheduled_threshold(schedule, 200, 0.1) == 0.9
    assert scheduled_threshold(schedule, 100, 0.1) == 0.9  # equally far: the larger memory's (stricter)
    assert scheduled_threshold(schedule, 10 ** 6, 0.1) == 0.97
    assert scheduled_threshold((), 5, 0.3) == 0.3
    config = EditorConfig(threshold=0.4, threshold_by_size=[[1000, 0.9], [10, 0.5]])
    assert config.threshold_by_size == ((10, 0.5), (1000, 0.9)) and config.threshold_for(3000) == 0.9
    with pytest.raises(ConfigError, match="threshold_by_size"):
        EditorConfig(threshold_by_size=((10, 1.5),))
    spec = MethodSpec("s", None, BASE, threshold=0.4, threshold_by_size=config.threshold_by_size)
    assert (spec.threshold_at(9), spec.threshold_at(5000)) == (0.5, 0.9)


def test_same_subject_locality_queries_come_from_the_held_out_records():
    def fact(subject, template, label, truth):
        return EditRecord("fact", template.format(subject), label, subject=subject, ground_truth=truth)

    records = [fact("Big Ben", "{} is located in", "Paris", "London"), fact("Louvre", "{} is located in", "Rome", "Paris"),
               fact("Shard", "The architect of {} is", "Renzo Piano", "Norman Foster"),
               fact("Gherkin", "The architect of {} is", "Jorn Utzon", "Norman Foster")]
    augmented, kinds = with_same_subject(records, per_edit=1, seed=0)
    assert [r.edit_id for r in augmented] == [r.edit_id for r in records]
    added = {r.subject: [e.input for e in r.out_of_scope] for r in augmented}
    assert added == {"Big Ben": ["The architect of Big Ben is"], "Louvre": ["The architect of Louvre is"],
                     "Shard": ["Shard is located in"], "Gherkin": ["Gherkin is located in"]}
    assert set(kinds.values()) == {SAME_SUBJECT} and len(kinds) == 4
    assert all(e.label is None for r in augmented for e in r.out_of_scope)  # DD compares with the base model
    assert with_same_subject(records, per_edit=0) == (records, {})
