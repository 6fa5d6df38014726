"""The nightly-ingest flow audits its memory changes (flow-run id, reason, file#row), DVC versions the trail
with the memory, and the Markdown artifact summarises it."""

from __future__ import annotations

import json
import uuid

import pytest
from ingest_fakes import EXTRA_EDITS, init_dvc_repo, make_inbox, write_params

from serac.config import load_config
from serac.memory import audit

pytestmark = pytest.mark.usefixtures("prefect_harness")


def dvc_dir_listing(repo, dvc_file) -> list[str]:
    """relpaths in the DVC cache's listing of the directory that ``dvc_file`` tracks."""
    import yaml

    md5 = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
    listing = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    return [entry["relpath"] for entry in json.loads(listing.read_text())]


def test_flow_run_is_the_actor_and_the_report_links_the_trail(tmp_path, editor_dir, monkeypatch):
    from test_nightly_flow import read_artifact

    import flows.nightly_ingest as nightly

    monkeypatch.setattr(nightly, "retrain", lambda **kwargs: pytest.fail("the retrain flow was reached"))
    tracked = init_dvc_repo(tmp_path)
    inbox = make_inbox(tmp_path, sample=False, extra=True)
    params = write_params(tmp_path, inbox, dvc_track_memory=tracked, retrain_min_new_edits=1000)
    root = load_config(params).memory.root

    report = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir), reason="CHG-7 nightly")

    (record,) = audit.read_records(root)
    run_id = record.actor.removeprefix("prefect-flow-run:")
    assert record.actor.startswith("prefect-flow-run:") and uuid.UUID(run_id)
    assert (record.action, record.reason, record.version_before, record.version_after) == ("add", "CHG-7 nightly", 0, 1)
    batch = inbox / "batch-0002.jsonl"
    assert record.source == f"ingest {batch}" and len(record.edit_ids) == len(EXTRA_EDITS)
    assert record.edit_sources == (f"{batch}#1", f"{batch}#2")
    assert report.audit_log == str(audit.audit_path(root)) and [a["hash"] for a in report.audit] == [record.hash]
    md = read_artifact("nightly-ingest")
    assert "## Audit trail" in md and f"`{audit.audit_path(root)}`" in md and "serac memory history" in md
    assert "| 1 | add | v0 -> v1 | 2 |" in md and "CHG-7 nightly" in md and record.hash[:12] in md
    if tracked:  # dvc add of the memory directory carries its audit trail
        assert "audit.jsonl" in dvc_dir_listing(tmp_path, tmp_path / "memory.dvc")

    again = nightly.nightly_ingest(params_path=str(params), editor_dir=str(editor_dir))
    assert again.audit == [] and len(audit.read_records(root)) == 1  # nothing changed, nothing recorded
    assert "0 change(s) recorded by this run" in read_artifact("nightly-ingest")
    assert audit.verify(root) == []
