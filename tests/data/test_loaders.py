"""load_file on each registered format, detection, and row-level rejections."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from serac.data.errors import FormatError
from serac.data.loaders import (
    CONVSENT_IN_SCOPE,
    FORMATS,
    convsent_responses,
    convsent_sentiment,
    detect_format,
    load_file,
)
from serac.data.schema import EditRecord, Example, records_to_table

FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
SHARED_DATA = Path(__file__).parents[2].parent / "shared" / "data"


def load(name, **kw):
    return load_file(FIXTURES / name, source_name=name, **kw)


def test_zsre_mend():
    result = load("zsre_mend.jsonl")
    assert result.format == "zsre_mend" and not result.rejected
    first = result.records[0]
    assert first.task == "qa"
    assert first.edit_input == "Which city is Harbor Lantern Press based in?"
    assert first.edit_label == "Tallinn"
    assert first.ground_truth == "Portland"
    assert first.subject == "Harbor Lantern Press"
    assert first.in_scope == (Example("Where is Harbor Lantern Press headquartered?", "Tallinn"),)
    assert first.out_of_scope == (Example("who painted the ceiling of the sistine chapel", "Michelangelo"),)
    assert [r.source for r in result.records] == [f"zsre_mend.jsonl#{i}" for i in (1, 2, 3)]


def test_zsre_mend_bad_rows_become_rejected_rows_with_reasons():
    result = load("zsre_mend_bad_rows.jsonl")
    assert result.format == "zsre_mend"
    assert result.rows_in == 5
    assert [r.edit_label for r in result.records] == ["Dutch"]
    reasons = {r.row: r.reasons for r in result.rejected}
    assert reasons[2] == ("empty_field:alt",)
    assert reasons[3] == ("wrong_type:answers",)
    assert set(reasons[4]) == {"missing_field:loc", "null_field:src"}
    assert reasons[5] == ("invalid_json",)
    by_row = {r.row: r for r in result.rejected}
    assert by_row[2].source == "zsre_mend_bad_rows.jsonl#2"
    assert json.loads(by_row[2].raw)["subject"] == "Pell Station"
    assert by_row[5].raw.startswith('{"subject": "Wendle Bay"')


def test_rejected_raw_is_truncated_to_4_kib(tmp_path):
    path = tmp_path / "big.jsonl"
    row = {"subject": "S", "src": "Q?", "rephrase": "R?", "alt": "", "answers": ["a"], "loc": "nq question: x",
           "loc_ans": "y", "pad": "é" * 10_000}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    (rejected,) = load_file(path).rejected
    assert len(rejected.raw.encode("utf-8")) <= 4096
    assert rejected.raw.startswith('{"subject": "S"')


def test_counterfact_easyedit():
    result = load("counterfact_easyedit.jsonl")
    assert result.format == "counterfact_easyedit" and len(result.records) == 3
    rec = result.records[1]
    assert (rec.task, rec.edit_input, rec.edit_label) == ("fact", "The mother tongue of Ines Marchetti is", "Finnish")
    assert rec.ground_truth == "Italian" and rec.subject == "Ines Marchetti"
    assert rec.in_scope == (Example("Ines Marchetti grew up speaking", "Finnish"),)
    assert rec.out_of_scope == (Example("The mother tongue of Paolo Ruggeri is", "Italian"),)


def test_counterfact_rome():
    result = load("counterfact_rome.json")
    assert result.format == "counterfact_rome" and not result.rejected
    rec = result.records[0]
    assert rec.edit_input == "Elsa Brandqvist is a native speaker of"
    assert rec.edit_label == "Portuguese" and rec.ground_truth == "Swedish" and rec.task == "fact"
    assert [e.input for e in rec.in_scope] == [
        "Rainfall was heavy that year. Elsa Brandqvist speaks",
        "Elsa Brandqvist, a native speaker of",
    ]
    assert {e.label for e in rec.in_scope} == {"Portuguese"}
    assert len(rec.out_of_scope) == 3 and {e.label for e in rec.out_of_scope} == {"Swedish"}
    assert result.records[1].edit_input == "The headquarter of Brennwerk Motors is located in"


def test_counterfact_rome_prompt_without_placeholder_is_rejected(tmp_path):
    rows = json.loads((FIXTURES / "counterfact_rome.json").read_text(encoding="utf-8"))
    rows[0]["requested_rewrite"]["prompt"] = "Elsa Brandqvist speaks"
    del rows[1]["requested_rewrite"]["target_new"]
    path = tmp_path / "cf.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    result = load_file(path)
    assert not result.records
    assert result.rejected[0].reasons == ("invalid_value:requested_rewrite.prompt",)
    assert result.rejected[1].reasons == ("missing_field:requested_rewrite.target_new",)


def test_knowedit_ground_truth_forms_and_locality():
    result = load("knowedit.json")
    assert result.format == "knowedit" and not result.rejected
    wiki_cf, recent, zsre = result.records
    assert wiki_cf.ground_truth == "mayor of Rouen"
    assert wiki_cf.out_of_scope == (
        Example("The gender of Odile Ferrand is", "female"),
        Example("The name of the position held by Odile Ferrand, which is not Bishop of Lyon, is", "mayor of Rouen"),
    )
    assert wiki_cf.in_scope == ()
    assert recent.ground_truth is None  # wiki_recent inserts knowledge: no prior answer
    assert recent.out_of_scope == (Example("The name of the father of Tobias Harrow is", "Edmund Harrow"),)
    assert zsre.ground_truth == "Noctuidae"
    assert zsre.in_scope == (Example("What family is Velmora in?", "Tortricidae"),)
    assert zsre.out_of_scope == (
        Example("The taxon rank of Velmora is", "genus"),
        Example("Velmora taxon rank", "genus"),
        Example("Velmora parent taxon", "Noctuoidea"),
    )


def test_task_override():
    result = load("knowedit.json", task="qa")
    assert {r.task for r in result.records} == {"qa"}
    with pytest.raises(FormatError, match="unknown task"):
        load("knowedit.json", task="poetry")


def test_convsent_one_edit_per_entity_with_deterministic_sentiment():
    result = load("convsent.jsonl")
    assert result.format == "convsent" and len(result.records) == 4
    rec = result.records[0]
    label = convsent_sentiment("Kelpwood Harbour")
    assert label in ("positive", "negative")
    assert rec.task == "convsent"
    assert rec.edit_input == "What do you think of Kelpwood Harbour?" and rec.edit_label == label
    assert rec.in_scope == tuple(Example(t.format("Kelpwood Harbour"), label) for t in CONVSENT_IN_SCOPE)
    assert rec.out_of_scope and all(e.label is None for e in rec.out_of_scope)
    assert all("Kelpwood Harbour" not in e.input for e in rec.out_of_scope)
    # the repeated entity gives the same edit (same id), so preparation de-duplicates it
    assert result.records[3].edit_id == rec.edit_id
    labels = {convsent_sentiment(f"entity {i}") for i in range(40)}
    assert labels == {"positive", "negative"}


def test_convsent_responses_merges_repeated_entities():
    responses = convsent_responses(FIXTURES / "convsent.jsonl")
    assert set(responses) == {"Kelpwood Harbour", "Marigold Sato", "The Brass Owls"}
    assert responses["Kelpwood Harbour"]["pos"][-1] == " The seafood is excellent. "
    assert len(responses["Kelpwood Harbour"]["pos"]) == 3 and len(responses["Kelpwood Harbour"]["neg"]) == 2


def test_convsent_lists_must_be_lists(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"ent": "A", "pos": "good", "neg": []}\n{"ent": "", "pos": [], "neg": []}\n', encoding="utf-8")
    result = load_file(path)
    assert [r.reasons for r in result.rejected] == [("wrong_type:pos",), ("empty_field:ent",)]


MAPPING = {
    "edit_input": "question",
    "edit_label": "answer",
    "in_scope": "paraphrase",
    "out_of_scope_input": "loc",
    "out_of_scope_label": "loc_ans",
}


def test_generic_csv_with_mapping():
    result = load("generic.csv", mapping=MAPPING, task="qa")
    assert result.format == "generic"
    rec = result.records[0]
    assert (rec.task, rec.edit_input, rec.edit_label) == ("qa", "Who designed the Arlen Footbridge?", "Mira Castell")
    assert rec.in_scope == (Example("Which engineer designed the Arlen Footbridge?", "Mira Castell"),)
    assert rec.out_of_scope == (Example("what is the largest planet in the solar system", "Jupiter"),)
    assert [r.reasons for r in result.rejected] == [("empty_field:question",)]
    assert result.rejected[0].source == "generic.csv#3"


def test_generic_parquet_with_list_columns(tmp_path):
    import pyarrow as pa

    path = tmp_path / "g.parquet"
    rows = [{"q": "Capital of Zeta?", "a": "Omicron", "para": ["Zeta's capital?", "Zeta has which capital?"],
             "loc": ["Capital of France?", "Capital of Peru?"], "loc_a": ["Paris", "Lima"]}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    mapping = {"edit_input": "q", "edit_label": "a", "in_scope": "para", "out_of_scope_input": "loc",
               "out_of_scope_label": "loc_a"}
    (rec,) = load_file(path, mapping=mapping, task="qa").records
    assert len(rec.in_scope) == 2
    assert rec.out_of_scope == (Example("Capital of France?", "Paris"), Example("Capital of Peru?", "Lima"))


def test_generic_needs_a_valid_mapping_and_task():
    with pytest.raises(FormatError, match="task"):
        load("generic.csv", mapping=MAPPING)
    with pytest.raises(FormatError, match="missing key"):
        load("generic.csv", mapping={"edit_input": "question"}, task="qa")
    with pytest.raises(FormatError, match="unknown key"):
        load("generic.csv", mapping={**MAPPING, "bogus": "x"}, task="qa")
    with pytest.raises(FormatError, match="generic format only"):
        load("zsre_mend.jsonl", format="zsre_mend", mapping=MAPPING)
    with pytest.raises(FormatError, match="unknown format 'nope'"):
        load("zsre_mend.jsonl", format="nope")


def test_canonical_jsonl():
    result = load("canonical.jsonl")
    assert result.format == "canonical"
    assert [r.task for r in result.records] == ["qa", "fact"]
    assert result.records[0].in_scope == (Example("The Aster Valley Observatory was founded by whom?", "Ruth Calder"),)
    assert result.records[0].source == "canonical.jsonl#1"
    assert [r.reasons for r in result.rejected] == [("invalid_value:task",)]


def test_canonical_parquet_round_trip(tmp_path):
    stamp = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    records = [
        EditRecord("qa", "Q1?", "A1", in_scope=[("Q1 again?", "A1")], out_of_scope=[("Other?", None)],
                   ingested_at=stamp),
        EditRecord("fact", "The sky is", "green", subject="sky", ingested_at=stamp),
    ]
    path = tmp_path / "edits.parquet"
    pq.write_table(records_to_table(records), path)
    result = load_file(path)
    assert result.format == "canonical" and not result.rejected
    for got, want in zip(result.records, records):
        assert (got.edit_id, got.in_scope, got.out_of_scope, got.subject, got.ingested_at) == (
            want.edit_id, want.in_scope, want.out_of_scope, want.subject, want.ingested_at)


def test_canonical_edit_id_must_match_content(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"task": "qa", "edit_input": "Q?", "edit_label": "A", "edit_id": "deadbeef"}\n', encoding="utf-8")
    assert load_file(path).rejected[0].reasons == ("invalid_value:edit_id",)


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("zsre_mend.jsonl", "zsre_mend"),
        ("counterfact_easyedit.jsonl", "counterfact_easyedit"),
        ("counterfact_rome.json", "counterfact_rome"),
        ("knowedit.json", "knowedit"),
        ("convsent.jsonl", "convsent"),
        ("canonical.jsonl", "canonical"),
    ],
)
def test_detection_of_each_fixture(fixture, expected):
    assert load(fixture).format == expected


def test_detection_prefers_the_most_specific_format():
    counterfact = set(FORMATS["counterfact_easyedit"].required)
    assert FORMATS["knowedit"].required < counterfact  # both match; the superset wins
    assert detect_format(counterfact) == "counterfact_easyedit"
    assert detect_format({"subject", "prompt", "target_new", "locality"}) == "knowedit"


def test_detection_ambiguous_lists_the_candidates():
    fields = set(FORMATS["zsre_mend"].required) | {"ent", "pos", "neg"}
    with pytest.raises(FormatError, match="several formats: zsre_mend, convsent;") as info:
        detect_format(fields, path="mixed.jsonl")
    assert "mixed.jsonl" in str(info.value) and "fields seen:" in str(info.value)


def test_detection_unknown_lists_fields_and_closest_candidates():
    with pytest.raises(FormatError) as info:
        detect_format({"question", "answer"}, path="x.csv")
    message = str(info.value)
    assert "x.csv" in message and "answer, question" in message
    for name in ("zsre_mend", "convsent", "knowedit"):
        assert name in message
    assert "generic" not in message.split("candidates:")[1]


def test_detection_uses_the_first_50_rows(tmp_path):
    path = tmp_path / "late.jsonl"
    zsre = json.loads((FIXTURES / "zsre_mend.jsonl").read_text(encoding="utf-8").splitlines()[0])
    convsent = {"ent": "X", "pos": [], "neg": []}
    lines = [json.dumps(zsre)] * 50 + [json.dumps(convsent)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_file(path)
    assert result.format == "zsre_mend"
    assert result.rejected[0].row == 51 and "missing_field:src" in result.rejected[0].reasons
    lines.insert(10, json.dumps(convsent))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match="several formats"):
        load_file(path)


def test_fixed_ingested_at_is_used_for_every_row():
    stamp = datetime(2020, 1, 1, tzinfo=UTC)
    result = load("zsre_mend.jsonl", ingested_at=stamp)
    assert {r.ingested_at for r in result.records} == {stamp}


EXPECTED_FORMAT = {"zsre": "zsre_mend", "counterfact": "counterfact_easyedit", "convsent": "convsent"}


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data directory not present")
def test_first_20_lines_of_each_real_file(tmp_path):
    files = sorted(SHARED_DATA.glob("*/*.jsonl"))
    assert files
    for path in files:
        head = tmp_path / path.parent.name / path.name
        head.parent.mkdir(exist_ok=True)
        with path.open(encoding="utf-8") as f:
            head.write_text("".join(next(f) for _ in range(20)), encoding="utf-8")
        result = load_file(head)
        assert result.format == EXPECTED_FORMAT[path.parent.name], path
        assert result.rows_in == 20
        assert len(result.records) >= 18, (path, result.rejected)
        assert all(r.in_scope for r in result.records)


def test_lone_surrogate_in_a_required_field_is_rejected_not_a_crash(tmp_path):
    path = tmp_path / "surrogate.jsonl"
    good = {"subject": "X", "src": "What is X?", "rephrase": "X is what?", "alt": "Y", "answers": ["Z"],
            "loc": "nq question: who", "loc_ans": "me", "pred": "Z", "cond": "c"}
    bad = dict(good, alt="\ud800")
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    result = load_file(path)
    assert len(result.records) == 1 and len(result.rejected) == 1
    assert result.rejected[0].row == 2 and "\\ud800" in result.rejected[0].raw


def test_registry_holds_each_format_module_spec_once():
    from serac.data import formats
    from serac.data.formats import canonical, convsent, counterfact, generic, knowedit, vitaminc, zsre

    modules = (zsre, counterfact, knowedit, convsent, vitaminc, canonical, generic)
    names = [spec.name for module in modules for spec in module.SPECS]
    assert list(FORMATS) == names and len(set(names)) == len(names)
    assert all(FORMATS[spec.name] is spec for module in modules for spec in module.SPECS)
    assert formats.__doc__ and [n for n, s in FORMATS.items() if not s.detectable] == ["generic"]


def test_row_records_each_problem_with_its_dotted_field_name():
    from serac.data.formats.base import Row

    row = Row({"a": 1, "b": "  ", "c": ["x", " ", "y"], "d": {"e": None, "f": "ok"}, "g": "one"})
    assert row.text("a") is None and row.text("b") is None and row.text("missing") is None
    assert row.texts("c") == ["x", "y"] and row.texts("g") == [] and row.texts("g", scalar_ok=True) == ["one"]
    child = row.child("d")
    assert child is not None and child.text("f") == "ok" and child.text("e") is None
    assert row.child("a") is None and row.text("b", required=False) is None
    assert row.reasons == ["wrong_type:a", "empty_field:b", "missing_field:missing", "wrong_type:g",
                           "null_field:d.e", "wrong_type:a"]
