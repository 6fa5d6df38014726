"""`serac edit add` for edits already in the memory (issue 14, item 10a): "already present", exit 0.

Before the fix the single-edit form exited 1 with "batch failed validation (100% quarantined)".
"""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from serac.cli.main import app

OPERATOR_BASE = {"kind": "callable", "callable": "ingest_fakes:base_answers"}  # the operator's choice
EDIT = ["--input", "Which river runs through Tollmere?", "--label", "the Wendle"]


def test_adding_an_edit_that_is_already_present_says_so_and_exits_0(tmp_path, editor_dir):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"memory": {"root": str(tmp_path / "memory")}, "base": OPERATOR_BASE}))
    runner, common = CliRunner(), ["--params", str(params), "--editor", str(editor_dir)]
    first = runner.invoke(app, ["edit", "add", *EDIT, *common])
    assert first.exit_code == 0 and "added 1 edit(s)" in first.output, first.output
    again = runner.invoke(app, ["edit", "add", *EDIT, *common])
    assert again.exit_code == 0, again.output
    assert "already present" in again.output and "memory version 1 (unchanged)" in again.output
    assert "quarantined" not in again.output

    batch = tmp_path / "batch.jsonl"
    rows = [{"task": "qa", "edit_input": "Which river runs through Tollmere?", "edit_label": "the Wendle"},
            {"task": "qa", "edit_input": "Who painted The Amber Quay?", "edit_label": "Ines Marwood"}]
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mixed = runner.invoke(app, ["edit", "add", str(batch), *common, "--out", str(tmp_path / "out")])
    assert mixed.exit_code == 0, mixed.output
    assert "added 1 edit(s), 1 already present, 0 quarantined; memory version 2" in mixed.output
