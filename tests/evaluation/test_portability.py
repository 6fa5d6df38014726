"""Portability probes: read from zsRE rows, tied to their test edit, asked of every method."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest

from serac.data.errors import DataFileError
from serac.data.portability import PortabilityProbe, read_portability
from serac.data.schema import EditRecord, Example
from serac.evaluation.portability import evaluate_portability, probed_records
from serac.evaluation.protocol import MethodSpec
from serac.models.base import CallableBaseModel


def _row(src: str, alt: str, probe: object = None) -> dict:
    row = {"subject": "s", "src": src, "alt": alt, "rephrase": src + " again", "pred": "p", "answers": ["p"],
           "loc": "nq question: x", "loc_ans": "y"}
    if probe is not None:
        row["portability"] = probe
    return row


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_read_portability_keeps_complete_probes_and_skips_the_rest(tmp_path):
    path = _write(tmp_path / "val.jsonl", [
        _row("What company made Volvo B12M?", "Volkswagen Group",
             {"New Question": "Where is the HQ of the maker of the Volvo B12M?", "New Answer": "Wolfsburg"}),
        _row("Who wrote X?", "Y"),  # no probe
        _row("Who sang Z?", "W", {"New Question": "", "New Answer": "V"}),  # incomplete
    ])
    assert read_portability(path) == [PortabilityProbe("What company made Volvo B12M?", "Volkswagen Group",
                                                       "Where is the HQ of the maker of the Volvo B12M?",
                                                       "Wolfsburg")]
    assert read_portability(tmp_path / "absent.jsonl") == []


def test_a_malformed_probe_names_file_row_and_field(tmp_path):
    path = _write(tmp_path / "val.jsonl", [_row("a?", "b", {"New Question": "q", "New Answer": "a"}),
                                           _row("c?", "d", "not an object")])
    with pytest.raises(DataFileError) as err:
        read_portability(path)
    assert err.value.path == str(path) and err.value.row == 2 and err.value.field == "portability"


A = EditRecord("qa", "What company made V?", "VW", in_scope=[Example("V's maker?", "VW")])
B = EditRecord("qa", "Who wrote X?", "Y", in_scope=[Example("X's author?", "Y")])
PROBE_A = PortabilityProbe("What company made V?", "VW", "Where is the HQ of V's maker?", "Wolfsburg, Germany")
PROBE_OTHER_LABEL = PortabilityProbe("Who wrote X?", "not Y", "q", "a")  # same input, another label: not B's


def test_probes_are_tied_to_their_edit_by_input_and_label():
    assert probed_records([A, B, A], [PROBE_OTHER_LABEL, PROBE_A]) == [(A, PROBE_A)]


@dataclass(frozen=True)
class Answer:
    answer: str
    routed_to: str


class Scripted:
    def __init__(self, answers: dict[str, str]) -> None:
        self.answers, self.memory = answers, []

    def edit(self, records):
        self.memory.extend(records)

    def predict(self, queries):
        assert [r.edit_input for r in self.memory] == [A.edit_input]  # the probed edits are in memory
        return [Answer(self.answers[q], "counterfactual" if q in self.answers else "base") for q in queries]


def test_each_method_is_scored_by_contains_match_with_routing_where_it_has_a_scope():
    base = CallableBaseModel(lambda qs: ["I do not know"] * len(qs))
    right = MethodSpec("right", lambda root: Scripted({PROBE_A.question: "It is in Wolfsburg, Germany."}), base,
                       threshold=0.5)
    wrong = MethodSpec("wrong", lambda root: Scripted({PROBE_A.question: "Paris"}), base)
    skipped = MethodSpec("ft", None, base, skip_reason="not here")
    rows = evaluate_portability([right, wrong, skipped], [(A, PROBE_A)])
    assert [(r.method, r.n, r.accuracy, r.routed) for r in rows[:2]] == [("right", 1, 1.0, 1.0),
                                                                          ("wrong", 1, 0.0, None)]
    assert rows[2].skipped == "not here" and math.isnan(rows[2].accuracy)
    assert rows[2].as_dict()["accuracy"] is None  # JSON-safe
