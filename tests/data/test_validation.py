"""GX validation with quarantine: each bad kind of row gets its reason, rows in = passed + quarantined."""

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from serac.config import ValidationConfig
from serac.data.errors import DataFileError, FormatError, RejectedRow
from serac.data.quarantine import (
    OUTPUT_FILES,
    QUARANTINE_SCHEMA,
    RAW_LIMIT,
    from_rejected,
    quarantine_table,
    read_quarantine,
    write_quarantine,
)
from serac.data.schema import EDIT_SCHEMA, EditRecord, Example, edit_id_for, table_to_records
from serac.data.validation import build_suite, failures_by_idx, token_lengths, validate_file, validate_records

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "inbox" / "batch-0001.jsonl"
CFG = ValidationConfig()

NOT_NULL_LABEL = "expect_column_values_to_not_be_null(edit_label)"
BLANK_LABEL = "expect_column_values_to_match_regex(edit_label)"
LEN_INPUT = "expect_column_value_lengths_to_be_between(edit_input)"
LEN_LABEL = "expect_column_value_lengths_to_be_between(edit_label)"
EXAMPLE_MAX = "expect_column_values_to_be_between(example_input_max_chars)"
EXAMPLE_LABEL_MAX = "expect_column_values_to_be_between(example_label_max_chars)"
TOKENS = "expect_column_values_to_be_between(token_len)"
UNIQUE = "expect_column_values_to_be_unique(edit_id)"
IN_MEMORY = "expect_column_values_to_be_in_set(in_memory)"
SAME_LABEL = "expect_column_values_to_be_in_set(label_equals_input)"
CONTROL = "expect_column_values_to_be_in_set(has_control_chars)"
IN_SCOPE = "expect_column_values_to_be_between(n_in_scope)"
TASK = "expect_column_values_to_be_in_set(task)"


DEFAULT = object()


def rec(i, *, task="qa", edit_input=DEFAULT, edit_label=DEFAULT, in_scope=DEFAULT, **kw):
    """A valid record numbered ``i`` (source row ``i``), with fields overridable (``None`` included)."""
    edit_input = f"Which city is the made-up Institute {i} located in?" if edit_input is DEFAULT else edit_input
    edit_label = f"Osterbrück {i}" if edit_label is DEFAULT else edit_label
    in_scope = [Example(f"Where is the made-up Institute {i}?", edit_label)] if in_scope is DEFAULT else in_scope
    kw.setdefault("out_of_scope", [Example("who wrote moby dick", "Herman Melville")])
    return EditRecord(task=task, edit_input=edit_input, edit_label=edit_label, in_scope=in_scope,
                      source=f"batch.jsonl#{i}", **kw)


def canonical_row(i, **overrides):
    row = {
        "task": "qa",
        "edit_input": f"Which sea does the made-up river {i} flow into?",
        "edit_label": f"Sea {i}",
        "subject": f"river {i}",
        "ground_truth": "North Sea",
        "in_scope": [{"input": f"The made-up river {i} empties into which sea?", "label": f"Sea {i}"}],
        "out_of_scope": [{"input": "what is the capital of peru", "label": "Lima"}],
    }
    row.update(overrides)
    return row


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def reasons_by_row(report):
    return {q.row: set(q.reasons) for q in report.quarantined}


def check_invariant(report):
    assert report.rows_in == len(report.passed) + len(report.quarantined)
    assert {r.source for r in report.passed}.isdisjoint({q.source for q in report.quarantined})


# ------------------------------------------------------------------ validate_records


def test_each_kind_of_bad_row_is_quarantined_with_its_expectation():
    records = [
        rec(1),
        rec(2, edit_label=""),
        rec(3, edit_label="   "),
        rec(4, edit_label=None),
        rec(5, edit_input="Who Founded X?", edit_label="  who founded   x? "),
        rec(6, edit_input="Which river flows\x07 through Y?"),
        rec(7, in_scope=[]),
        rec(8, edit_input="x" * 2001),
        rec(9, edit_label="y" * 2001),
        rec(10, out_of_scope=[Example("z" * 2001, "a")]),
        rec(11),
    ]
    rejected = [RejectedRow("batch.jsonl#12", 12, ("missing_field:edit_label",), '{"task": "qa"}')]
    report = validate_records(records, rejected, CFG)
    check_invariant(report)
    got = reasons_by_row(report)
    assert got[2] == {BLANK_LABEL, LEN_LABEL}
    assert got[3] == {BLANK_LABEL}
    assert got[4] == {NOT_NULL_LABEL}
    assert got[5] == {SAME_LABEL}
    assert got[6] == {CONTROL}
    assert got[7] == {IN_SCOPE}
    assert LEN_INPUT in got[8]
    assert got[9] == {LEN_LABEL, EXAMPLE_LABEL_MAX}  # the in-scope example repeats the label
    assert got[10] == {EXAMPLE_MAX}
    assert got[12] == {"missing_field:edit_label"}
    assert sorted(r.source for r in report.passed) == ["batch.jsonl#1", "batch.jsonl#11"]
    assert report.reason_counts[BLANK_LABEL] == 2
    assert report.failure_rate == pytest.approx(10 / 12)
    assert report.batch_ok is False


def test_duplicates_keep_the_first_copy_and_quarantine_later_ones():
    records = [rec(1), rec(2), replace(rec(1), source="batch.jsonl#3"), replace(rec(1), source="batch.jsonl#4")]
    report = validate_records(records, [], CFG)
    check_invariant(report)
    assert [r.source for r in report.passed] == ["batch.jsonl#1", "batch.jsonl#2"]
    assert reasons_by_row(report) == {3: {UNIQUE}, 4: {UNIQUE}}
    unique = next(
        r for r in report.gx_result["runs"]["qa"]["results"] if r["expectation_config"]["type"].endswith("_unique")
    )
    assert unique["result"]["unexpected_index_list"] == [1, 3, 4]  # GX flags every copy; we keep row 1
    assert report.gx_result["index"] == "row"


def test_ids_already_in_memory_are_quarantined():
    records = [rec(1), rec(2), rec(3)]
    report = validate_records(records, [], CFG, existing_ids={records[1].edit_id, "unrelated"})
    assert reasons_by_row(report) == {2: {IN_MEMORY}}


@pytest.mark.parametrize(
    "text",
    ["bell \x07", "nul \x00", "escape \x1b[31m", "c1 \x85", "replacement \ufffd", "lone \ud800 surrogate"],
)
def test_control_characters_replacement_chars_and_lone_surrogates_are_rejected(text):
    bad = rec(2, out_of_scope=[Example(f"what about {text}", "x")])
    report = validate_records([rec(1), bad], [], CFG)
    assert reasons_by_row(report) == {2: {CONTROL}}
    if "\ud800" in text:  # Parquet cannot store a lone surrogate: raw keeps it escaped
        assert "\\ud800" in report.quarantined[0].raw
    quarantine_table(report.quarantined)


def test_tabs_and_newlines_are_allowed():
    report = validate_records([rec(1, edit_input="Which city\tis it in?\nSay it."), rec(2)], [], CFG)
    assert not report.quarantined


def test_token_length_limit_uses_the_configured_tokenizer():
    lengths = token_lengths(["What is the capital of France?"], ["Paris"], "minilm")
    assert 9 <= lengths[0] <= 12  # [CLS] what is the capital of france ? [SEP] paris [SEP]
    cfg = replace(CFG, max_tokens=int(lengths[0]) + 2)
    q = "What is the capital of France?"
    records = [rec(1, edit_input=q, edit_label="Paris"), rec(2, edit_input=q, edit_label="a longer label, too long")]
    assert reasons_by_row(validate_records(records, [], cfg)) == {2: {TOKENS}}


def test_training_flag_and_config_control_the_in_scope_requirement():
    records = [rec(1), rec(2, in_scope=[])]
    assert reasons_by_row(validate_records(records, [], CFG)) == {2: {IN_SCOPE}}
    assert not validate_records(records, [], CFG, training=False).quarantined
    assert not validate_records(records, [], replace(CFG, require_in_scope=False)).quarantined


def test_task_specific_suites():
    fc = [rec(i, task="fc", edit_label=label) for i, label in enumerate(["TRUE", "False ", "maybe"], start=1)]
    assert reasons_by_row(validate_records(fc, [], CFG)) == {3: {"expect_column_values_to_be_in_set(edit_label_norm)"}}
    conv = [rec(1, task="convsent", edit_label="positive"), rec(2, task="convsent", edit_label="Positive"),
            rec(3, task="convsent", edit_label="neutral")]
    assert reasons_by_row(validate_records(conv, [], CFG)) == {
        2: {"expect_column_values_to_be_in_set(edit_label)"},
        3: {"expect_column_values_to_be_in_set(edit_label)"},
    }
    fact = [rec(1, task="fact", edit_input="Osselt flows into the", subject="Osselt"),
            rec(2, task="fact", edit_input="The river flows into the", subject="Osselt"),
            rec(3, task="fact", edit_input="It flows into the")]
    subject_in_input = "expect_column_values_to_be_in_set(subject_in_input)"
    assert reasons_by_row(validate_records(fact, [], CFG)) == {2: {subject_in_input}}
    sizes = {task: len(build_suite(task, CFG).expectations) for task in ("qa", "fact", "fc", "convsent")}
    assert sizes == {"qa": sizes["qa"], "fact": sizes["qa"] + 1, "fc": sizes["qa"] + 1, "convsent": sizes["qa"] + 1}
    assert len(build_suite("qa", CFG, training=False).expectations) == sizes["qa"] - 1


def test_mixed_tasks_get_one_suite_each_and_an_explicit_task_rejects_others():
    records = [rec(1), rec(2, task="fc", edit_label="true"), rec(3, task="fc", edit_label="nope")]
    report = validate_records(records, [], CFG)
    assert report.tasks == ("fc", "qa")
    assert set(report.gx_result["runs"]) == {"fc", "qa"}
    assert reasons_by_row(report) == {3: {"expect_column_values_to_be_in_set(edit_label_norm)"}}
    pinned = validate_records(records, [], CFG, task="qa")
    assert reasons_by_row(pinned) == {2: {TASK}, 3: {TASK}}


def test_failure_threshold_is_honoured():
    records = [rec(i) for i in range(1, 9)] + [rec(9, in_scope=[]), rec(10, in_scope=[])]  # 20% bad
    assert validate_records(records, [], replace(CFG, max_failure_rate=0.2)).batch_ok is True
    assert validate_records(records, [], replace(CFG, max_failure_rate=0.19)).batch_ok is False


def test_gx_result_is_plain_json_and_empty_batches_pass():
    report = validate_records([rec(1), rec(2, edit_label="")], [], CFG)
    text = json.dumps(report.gx_result)  # no default=: numpy scalars would raise here
    assert "ge_load_time" not in text
    assert report.gx_result["success"] is False
    empty = validate_records([], [], CFG)
    assert (empty.rows_in, empty.failure_rate, empty.batch_ok) == (0, 0.0, True)


def test_an_expectation_that_raised_stops_validation_instead_of_passing_rows():
    import pandas as pd

    frame = pd.DataFrame({"idx": [0], "edit_id": ["a"]})
    result = {"results": [{"success": False, "expectation_config": {"type": "expect_x", "kwargs": {"column": "c"}},
                           "exception_info": {"raised_exception": True, "exception_message": "boom"}, "result": {}}]}
    with pytest.raises(RuntimeError, match=r"expect_x\(c\) raised"):
        failures_by_idx(result, frame)
    result["results"][0]["exception_info"] = {"raised_exception": False}
    with pytest.raises(RuntimeError, match="without a complete list"):
        failures_by_idx(result, frame)


def test_quarantine_round_trip_and_raw_text_is_storable(tmp_path):
    rows = [from_rejected(RejectedRow("f#3", 3, ("invalid_json",), '{"a": "\ud800' + "x" * 10_000))]
    assert len(rows[0].raw) <= RAW_LIMIT + 16 and "\\ud800" in rows[0].raw
    write_quarantine(tmp_path / "q.parquet", rows)
    assert read_quarantine(tmp_path / "q.parquet") == rows


# ------------------------------------------------------------------ validate_file


def test_sample_batch_quarantines_exactly_the_planted_bad_rows(tmp_path):
    report = validate_file(SAMPLE, tmp_path / "out", CFG)
    check_invariant(report)
    assert report.rows_in == 41 and len(report.quarantined) == 5 and report.batch_ok
    assert {r for q in report.quarantined for r in q.reasons} == {
        "empty_field:edit_label", SAME_LABEL, CONTROL, IN_SCOPE, UNIQUE,
    }


def test_validate_file_writes_all_outputs_with_their_schemas(tmp_path):
    rows = [canonical_row(i) for i in range(1, 6)] + [canonical_row(6, edit_label=canonical_row(6)["edit_input"])]
    src = write_jsonl(tmp_path / "batch.jsonl", rows)
    out = tmp_path / "out"
    report = validate_file(src, out, CFG)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    passed = pq.read_table(out / "passed.parquet", schema=EDIT_SCHEMA)  # Parquet stores ingested_at as ms
    assert passed.schema.metadata == EDIT_SCHEMA.metadata and passed.num_rows == 5
    assert table_to_records(passed) == report.passed
    quarantined = read_quarantine(out / "quarantine.parquet")
    assert [(q.row, q.reasons) for q in quarantined] == [(6, (SAME_LABEL,))]
    assert quarantined[0].source == f"{src}#6" and quarantined[0].edit_id
    summary = json.loads((out / "summary.json").read_text())
    expected = {"rows_in": 6, "passed": 5, "quarantined": 1, "batch_ok": True, "format": "canonical",
                "reasons": {SAME_LABEL: 1}, "file": str(src)}
    assert {k: summary[k] for k in expected} == expected
    assert json.loads((out / "gx_result.json").read_text()) == report.gx_result
    html = (out / "report.html").read_text()
    assert SAME_LABEL in html and "<script" not in html and "http" not in html  # self-contained


def test_rerun_on_the_same_file_rewrites_identical_outputs(tmp_path):
    src = write_jsonl(tmp_path / "b.jsonl", [canonical_row(1), canonical_row(2, in_scope=[]), canonical_row(1)])
    out = tmp_path / "out"
    validate_file(src, out, CFG)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    validate_file(src, out, CFG)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert len(first) == len(OUTPUT_FILES)


def test_ten_thousand_character_strings_are_quarantined_by_length(tmp_path):
    long = "a" * 10_000
    rows = [canonical_row(1), canonical_row(2, edit_input=long + "?"), canonical_row(3, edit_label=long),
            canonical_row(4, in_scope=[{"input": long, "label": "Sea 4"}])]
    report = validate_file(write_jsonl(tmp_path / "long.jsonl", rows), tmp_path / "out", CFG)
    check_invariant(report)
    got = reasons_by_row(report)
    assert LEN_INPUT in got[2] and LEN_LABEL in got[3] and got[4] == {EXAMPLE_MAX}
    stored = read_quarantine(tmp_path / "out" / "quarantine.parquet")
    assert all(len(q.raw) <= 4097 for q in stored)


def test_rows_missing_fields_and_a_truncated_last_line_are_loader_rejects(tmp_path):
    src = tmp_path / "mixed.jsonl"
    good = [json.dumps(canonical_row(i)) for i in range(1, 5)]
    no_label = json.dumps({k: v for k, v in canonical_row(5).items() if k != "edit_label"})
    same = json.dumps(canonical_row(6, edit_input="Sea 6"))
    src.write_text("\n".join(good + [no_label, same, '{"task": "qa", "edi']), encoding="utf-8")
    report = validate_file(src, tmp_path / "out", CFG)
    check_invariant(report)
    assert report.rows_in == 7
    got = reasons_by_row(report)
    assert got[5] == {"missing_field:edit_label"} and got[6] == {SAME_LABEL} and got[7] == {"invalid_json"}
    table = pq.read_table(tmp_path / "out" / "quarantine.parquet")
    assert table.column("edit_id").to_pylist() == [None, edit_id_for("qa", "Sea 6", "Sea 6"), None]


def test_file_with_duplicates_and_memory_ids(tmp_path):
    rows = [canonical_row(1), canonical_row(2), canonical_row(1), canonical_row(3)]
    in_memory = edit_id_for("qa", rows[3]["edit_input"], rows[3]["edit_label"])
    report = validate_file(write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "out", CFG, existing_ids={in_memory})
    assert reasons_by_row(report) == {3: {UNIQUE}, 4: {IN_MEMORY}}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jsonl", b"", "empty file"),
        ("truncated.json", b'[{"task": "qa", "edit_input": "a?", "edit_label": "b"},\n{"task": "qa", "ed', "row 2"),
        ("latin1.jsonl", '{"task": "qa", "edit_input": "Café?", "edit_label": "b"}\n'.encode("latin-1"), "UTF-8"),
        ("nolabel.jsonl", b'{"task": "qa", "edit_input": "a?"}\n', "edit_label"),
    ],
)
def test_whole_file_problems_raise_a_clear_error_and_write_nothing(tmp_path, name, content, message):
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(DataFileError) as info:
        validate_file(src, tmp_path / "out", CFG)
    assert str(src) in str(info.value) and message in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_columns_everywhere_is_a_format_error(tmp_path):
    src = write_jsonl(tmp_path / "cols.jsonl", [{"question": "a?", "answer": "b"}])
    with pytest.raises(FormatError, match="fields match no known format"):
        validate_file(src, tmp_path / "out", CFG)


def test_write_quarantine_empty_still_has_the_schema(tmp_path):
    write_quarantine(tmp_path / "q.parquet", [])
    table = pq.read_table(tmp_path / "q.parquet")
    assert table.num_rows == 0 and table.schema.names == QUARANTINE_SCHEMA.names
    assert table.schema.metadata == QUARANTINE_SCHEMA.metadata
    assert read_quarantine(tmp_path / "q.parquet") == []


def test_json_escaped_lone_surrogate_in_an_example_is_quarantined_and_storable(tmp_path):
    src = tmp_path / "s.jsonl"
    bad = json.dumps(canonical_row(2, in_scope=[{"input": "x", "label": "y"}]))
    bad = bad.replace('"input": "x"', '"input": "x \\ud800"')  # JSON escape: decodes to a lone surrogate
    src.write_text(json.dumps(canonical_row(1)) + "\n" + bad + "\n", encoding="utf-8")
    report = validate_file(src, tmp_path / "out", CFG)
    assert reasons_by_row(report) == {2: {CONTROL}}
    assert "\\ud800" in read_quarantine(tmp_path / "out" / "quarantine.parquet")[0].raw
