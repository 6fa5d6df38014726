"""read_rows: row numbering per file type, and whole-file errors that name file and row."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serac.data.errors import DataFileError
from serac.data.readers import UnparsableRow, read_rows


def rows_of(path):
    return list(read_rows(path))


def test_jsonl_rows_are_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert rows_of(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_jsonl_truncated_last_line_is_a_marker_not_an_error(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "tru', encoding="utf-8")
    rows = rows_of(path)
    assert [n for n, _ in rows] == [1, 2, 3]
    row_no, marker = rows[2]
    assert isinstance(marker, UnparsableRow)
    assert marker.reason == "invalid_json"
    assert marker.text == '{"a": "tru'


def test_json_array_and_wrapped_object(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"x": 1}, {"x": 2}]), encoding="utf-8")
    assert rows_of(array) == [(1, {"x": 1}), (2, {"x": 2})]
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"version": 3, "data": [{"x": 1}]}), encoding="utf-8")
    assert rows_of(wrapped) == [(1, {"x": 1})]


def test_json_object_without_a_single_record_list_is_an_error(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"train": [{"x": 1}], "test": [{"x": 2}]}), encoding="utf-8")
    with pytest.raises(DataFileError, match="exactly one list value.*'train', 'test'"):
        rows_of(path)


def test_truncated_json_array_names_the_record_and_position(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[\n  {"x": 1},\n  {"x": 2},\n  {"x": "thr', encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        rows_of(path)
    err = info.value
    assert err.row == 3
    assert "cut.json" in str(err) and "record 3" in str(err) and "line 4" in str(err)


def test_json_array_missing_closing_bracket_says_truncated(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[{"x": 1}, {"x": 2}', encoding="utf-8")
    with pytest.raises(DataFileError, match="truncated") as info:
        rows_of(path)
    assert info.value.row == 2


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_files_are_errors(tmp_path, content):
    for suffix in (".json", ".jsonl", ".csv"):
        path = tmp_path / f"empty{suffix}"
        path.write_bytes(content)
        with pytest.raises(DataFileError, match="empty|no records") as info:
            rows_of(path)
        assert str(path) in str(info.value)


def test_empty_json_array_has_no_records(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(DataFileError, match="no records"):
        rows_of(path)


def test_latin1_jsonl_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "latin.jsonl"
    first = '{"a": "ok"}\n'.encode("utf-8")
    path.write_bytes(first + '{"a": "café"}\n'.encode("latin-1"))
    with pytest.raises(DataFileError) as info:
        rows_of(path)
    err = info.value
    offset = len(first) + len('{"a": "caf')
    assert err.row == 2
    assert "UTF-8" in str(err) and "line 2" in str(err) and f"byte offset {offset}" in str(err)
    assert "latin.jsonl" in str(err)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_latin1_json_and_csv_name_line_and_offset(tmp_path, suffix):
    path = tmp_path / f"latin{suffix}"
    text = '[{"a": "x"},\n{"a": "Zürich"}]' if suffix == ".json" else "a\nx\nZürich\n"
    path.write_bytes(text.encode("latin-1"))
    offset = text.index("ü")
    line = text[:offset].count("\n") + 1
    with pytest.raises(DataFileError, match=f"line {line}, byte offset {offset}"):
        rows_of(path)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"a": "é"}\n'.encode("utf-8"))
    assert rows_of(path) == [(1, {"a": "é"})]


@pytest.mark.parametrize(
    "suffix, content, row",
    [(".json", '[{"a": 1}, [1, 2]]', 2), (".jsonl", '{"a": 1}\n"just a string"\n', 2)],
)
def test_non_object_row_is_an_error_naming_the_row(tmp_path, suffix, content, row):
    path = tmp_path / f"rows{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFileError, match="expected an object") as info:
        rows_of(path)
    assert info.value.row == row
    assert f"rows{suffix}, row {row}" in str(info.value)


def test_missing_file_and_unsupported_suffix(tmp_path):
    with pytest.raises(DataFileError, match="no such file") as info:
        rows_of(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in str(info.value)
    other = tmp_path / "data.txt"
    other.write_text("hello", encoding="utf-8")
    with pytest.raises(DataFileError, match="unsupported file type"):
        rows_of(other)


def test_csv_rows_and_extra_fields_marker(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('q,a\n"Who, really?",me\nx,y,z\n', encoding="utf-8")
    rows = rows_of(path)
    assert rows[0] == (1, {"q": "Who, really?", "a": "me"})
    assert rows[1][0] == 2 and isinstance(rows[1][1], UnparsableRow) and rows[1][1].reason == "invalid_csv"


def test_parquet_rows(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist([{"a": "x", "b": [1]}, {"a": "y", "b": []}]), path)
    assert rows_of(path) == [(1, {"a": "x", "b": [1]}), (2, {"a": "y", "b": []})]


def test_corrupt_parquet_is_a_data_file_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataFileError, match="Parquet"):
        rows_of(path)
