"""``serac validate``: summary table, exit codes 0/1/2, one-line errors without tracebacks."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from serac.cli.main import app
from serac.data.quarantine import OUTPUT_FILES, read_quarantine
from serac.data.schema import edit_id_for

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "inbox" / "batch-0001.jsonl"
IN_MEMORY = "expect_column_values_to_be_in_set(in_memory)"

runner = CliRunner()


def row(i, **overrides):
    base = {
        "task": "qa",
        "edit_input": f"Who designed the made-up tower {i}?",
        "edit_label": f"Architect {i}",
        "in_scope": [{"input": f"The made-up tower {i} was designed by whom?", "label": f"Architect {i}"}],
        "out_of_scope": [{"input": "who painted the mona lisa", "label": "Leonardo da Vinci"}],
    }
    return base | overrides


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def invoke(*args):
    return runner.invoke(app, ["validate", *map(str, args)], terminal_width=200)


def test_sample_batch_passes_with_a_summary_table(tmp_path):
    out = tmp_path / "out"
    result = invoke(SAMPLE, "--out", out)
    assert result.exit_code == 0, result.output
    for text in ("rows in", "41", "passed", "36", "quarantined", "empty_field:edit_label",
                 "expect_column_values_to_be_unique(edit_id)", "batch OK"):
        assert text in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    lines = result.output.splitlines()
    order = [next(i for i, line in enumerate(lines) if key in line) for key in ("rows in", "passed", "quarantined")]
    assert order == sorted(order)


def test_batch_over_the_failure_threshold_exits_1(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("validation:\n  max_failure_rate: 0.1\n", encoding="utf-8")
    result = invoke(SAMPLE, "--out", tmp_path / "out", "--params", params)
    assert result.exit_code == 1
    assert "batch FAILED" in result.output and "12.2%" in result.output
    assert (tmp_path / "out" / "summary.json").exists()  # outputs are still written for inspection
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["batch_ok"] is False


@pytest.mark.parametrize(
    "name, content, needles",
    [
        ("empty.jsonl", b"", ["empty file"]),
        ("truncated.json", b'[{"task": "qa", "edit_input": "a?", "edit_label": "b"},\n{"task": "qa", "edit', ["row 2"]),
        ("latin1.jsonl", '{"task": "qa", "edit_input": "Café?", "edit_label": "b"}\n'.encode("latin-1"),
         ["row 1", "UTF-8"]),
        ("columns.jsonl", b'{"task": "qa", "edit_input": "a?"}\n', ["edit_label", "no known format"]),
    ],
)
def test_unreadable_files_exit_2_with_one_line_naming_the_file(tmp_path, name, content, needles):
    src = tmp_path / name
    src.write_bytes(content)
    result = invoke(src, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {src}")
    assert all(n in err for n in needles), err
    assert not (tmp_path / "out").exists()


def test_missing_file_and_bad_params_exit_2(tmp_path):
    result = invoke(tmp_path / "nope.jsonl", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "nope.jsonl" in result.stderr and "Traceback" not in result.output
    params = tmp_path / "params.yaml"
    params.write_text("validation:\n  max_failure_rat: 0.1\n", encoding="utf-8")
    result = invoke(SAMPLE, "--out", tmp_path / "out", "--params", params)
    assert result.exit_code == 2 and "max_failure_rat" in result.stderr


@pytest.mark.parametrize("kind", ["txt", "parquet"])
def test_memory_ids_quarantine_edits_already_in_the_memory(tmp_path, kind):
    rows = [row(i) for i in range(1, 11)]
    known = [edit_id_for("qa", r["edit_input"], r["edit_label"]) for r in rows[:2]]
    ids = tmp_path / f"ids.{kind}"
    if kind == "txt":
        ids.write_text("# memory snapshot\n" + "\n".join(known) + "\n\n", encoding="utf-8")
    else:
        pq.write_table(pa.table({"edit_id": known + ["other"]}), ids)
    out = tmp_path / "out"
    result = invoke(write_jsonl(tmp_path / "b.jsonl", rows), "--out", out, "--memory-ids", ids)
    assert result.exit_code == 0, result.output
    quarantined = read_quarantine(out / "quarantine.parquet")
    assert [(q.row, q.reasons) for q in quarantined] == [(1, (IN_MEMORY,)), (2, (IN_MEMORY,))]
    assert IN_MEMORY in result.output


def test_mixed_batch_counts_add_up_and_rerun_is_identical(tmp_path):
    rows = [row(i) for i in range(1, 8)] + [row(8, edit_label="x" * 10_000), row(1), row(9, in_scope=[])]
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"task": "qa", "edit_in', encoding="utf-8")
    out = tmp_path / "out"
    first = invoke(src, "--out", out)
    assert first.exit_code == 1  # 4 of 11 quarantined > 20%
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_in"] == 11 == summary["passed"] + summary["quarantined"]
    assert summary["quarantined"] == 4 and summary["reasons"]["invalid_json"] == 1
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    second = invoke(src, "--out", out)
    assert second.exit_code == 1 and second.output == first.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot


def test_no_training_and_task_options(tmp_path):
    src = write_jsonl(tmp_path / "b.jsonl", [row(1), row(2, in_scope=[])])
    assert invoke(src, "--out", tmp_path / "a").exit_code == 1  # 1 of 2 lacks in-scope examples
    assert invoke(src, "--out", tmp_path / "b", "--no-training").exit_code == 0
    pinned = invoke(src, "--out", tmp_path / "c", "--task", "fc", "--no-training")
    assert pinned.exit_code == 1 and "expect_column_values_to_be_in_set(task)" in pinned.output


def test_default_output_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = write_jsonl(tmp_path / "batch-0042.jsonl", [row(1), row(2)])
    assert invoke(src).exit_code == 0
    assert (tmp_path / "data" / "validated" / "batch-0042" / "summary.json").exists()
