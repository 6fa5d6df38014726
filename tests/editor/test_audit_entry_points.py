"""The Python API and the CLI record who changed the memory and why; `serac memory history` prints the trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_editor import PM, RIVER, make_editor
from typer.testing import CliRunner

from serac.cli import editor_cmds
from serac.cli.main import app
from serac.memory import audit
from serac.models.scope import ScopeClassifier

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "inbox" / "batch-0001.jsonl"


@pytest.fixture(scope="module")
def scope() -> ScopeClassifier:
    from serac.config import ScopeConfig

    return ScopeClassifier.from_config(ScopeConfig())


def test_python_api_records_reason_and_os_user(tmp_path, scope):
    editor = make_editor(tmp_path, scope)
    editor.edit([PM, RIVER], reason="JIRA-1")
    editor.forget([PM.edit_id], audit=audit.AuditContext("notebook-bob", "cleanup", "python"))
    add, remove = audit.read_records(tmp_path / "memory")
    assert (add.actor, add.reason, add.source, add.edit_ids) == (audit.os_user(), "JIRA-1", "python",
                                                                 (PM.edit_id, RIVER.edit_id))
    assert (remove.actor, remove.reason, remove.edit_ids) == ("notebook-bob", "cleanup", (PM.edit_id,))


@pytest.fixture
def cli(tmp_path, scope, monkeypatch):
    """``serac`` on a params.yaml whose memory lives in tmp; the packaged editor is replaced by a tiny one."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"memory": {"root": str(tmp_path / "memory")}}))
    monkeypatch.setattr(editor_cmds, "_load_editor", lambda cfg, editor: make_editor(tmp_path, scope))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "--params", str(params)])
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_cli_edit_add_rm_and_history(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # validation outputs land in data/validated/
    cli("edit", "add", "--input", PM.edit_input, "--label", PM.edit_label, "--reason", "CHG-100")
    cli("edit", "add", str(SAMPLE), "--reason", "nightly batch by hand")
    cli("memory", "rm", PM.edit_id, "--reason", "CHG-101 revert")
    root = tmp_path / "memory"
    single, batch, removal = audit.read_records(root)
    assert single.actor == audit.os_user() and single.source == "cli" and single.reason == "CHG-100"
    assert batch.source == f"cli {SAMPLE}" and len(batch.edit_ids) > 20
    assert batch.source_of(batch.edit_ids[0]) == f"{SAMPLE}#1"  # file#row of the batch row
    assert removal.edit_ids == (PM.edit_id,) and removal.reason == "CHG-101 revert"

    everything = cli("memory", "history")
    assert everything.count("\n") >= 3 and "CHG-100" in everything and "3 change(s)" in everything
    mine = cli("memory", "history", PM.edit_id)
    assert "CHG-100" in mine and "CHG-101" in mine and "nightly batch" not in mine
    first = batch.edit_ids[0]
    assert f"from {SAMPLE}#1" in cli("memory", "history", first)
    as_json = [json.loads(line) for line in cli("memory", "history", "--json").splitlines()]
    assert [r["action"] for r in as_json] == ["add", "add", "remove"] and all(r["committed"] for r in as_json)
    assert "verified" in cli("memory", "history", "--verify")


def test_cli_history_escapes_control_characters_and_verify_fails_on_tampering(cli, tmp_path):
    cli("memory", "rm", "nothing", code=1)  # nothing removed: no record
    assert not audit.audit_path(tmp_path / "memory").exists()
    cli("edit", "add", "--input", RIVER.edit_input, "--label", RIVER.edit_label, "--reason", "evil\x1b]0;pwned\x07")
    out = cli("memory", "history")
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;pwned\\x07" in out
    path = audit.audit_path(tmp_path / "memory")
    path.write_text(path.read_text().replace("pwned", "fine!"))
    tampered = cli("memory", "history", "--verify", code=1)
    assert "hash does not match" in tampered


def test_cli_refuses_an_oversized_reason(cli):
    out = cli("memory", "rm", "x", "--reason", "r" * (audit.MAX_REASON_CHARS + 1), code=2)
    assert "--reason" in out


def test_history_line_marks_uncommitted_changes_and_sealing():
    from serac.cli.audit_cmd import format_record

    record = audit.AuditRecord(
        seq=3, at="2026-01-01T00:00:00+00:00", actor="w", action="add", edit_ids=("a", "b", "c", "d"),
        version_before=2, version_after=3, manifest_sha256=None, reason=None, source="ingest x.jsonl",
        edit_sources=("x.jsonl#1", "x.jsonl#2", "x.jsonl#3", "x.jsonl#4"),
        details={"segments_written": [{"name": "s00000004-abc", "rows": 4, "index": "hnsw"}],
                 "segments_dropped": ["s00000002-def", "s00000003-123"]},
    )
    line = format_record(record, committed=False, edit_id="b")
    assert "v2->v3 (not committed)" in line and "(+1)" in line and "from x.jsonl#2" in line
    assert "sealed s00000004-abc" in line and "dropped 2 segment(s)" in line
