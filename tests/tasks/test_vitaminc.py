"""The VitaminC format: (claim, evidence, label) rows become fc edits; NOT ENOUGH INFO is rejected."""

from __future__ import annotations

import json

from serac.data.loaders import detect_format, load_file

ROWS = [
    {"claim": "The film grossed over $100 million.", "evidence": "The film grossed $120 million worldwide.",
     "label": "SUPPORTS", "unique_id": "1"},
    {"claim": "The film grossed under $50 million.", "evidence": "The film grossed $120 million worldwide.",
     "label": "REFUTES", "unique_id": "2"},
    {"claim": "The band formed in 1990.", "evidence": "The band released its first album in 1995.",
     "label": "NOT ENOUGH INFO", "unique_id": "3"},
    {"claim": "Paris is in France.", "evidence": "Paris is the capital of France.", "label": "SUPPORTS"},
]


def test_vitaminc_rows(tmp_path):
    path = tmp_path / "vitaminc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    assert detect_format({"claim", "evidence", "label", "unique_id"}) == "vitaminc"
    result = load_file(path)
    assert result.format == "vitaminc"
    assert [r.row for r in result.rejected] == [3] and result.rejected[0].reasons == ("invalid_value:label",)
    first, second, paris = result.records
    assert (first.task, first.edit_input, first.edit_label) == ("fc", ROWS[0]["evidence"], "true")
    assert [(e.input, e.label) for e in first.in_scope] == [(ROWS[0]["claim"], "true")]
    assert [(e.input, e.label) for e in second.in_scope] == [(ROWS[1]["claim"], "false")]
    assert first.edit_id == second.edit_id  # same evidence: the same edit (prepare keeps the first)
    for rec in (first, second, paris):  # out of scope: other rows' labelled claims, never its own
        claims = {e.input: e.label for e in rec.out_of_scope}
        assert rec.in_scope[0].input not in claims and len(claims) == 2
        assert set(claims.values()) <= {"true", "false"}
    assert {e.input for e in paris.out_of_scope} == {ROWS[0]["claim"], ROWS[1]["claim"]}
