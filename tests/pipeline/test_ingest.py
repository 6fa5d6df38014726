"""serac.pipeline.ingest without Prefect: discovery, ledger idempotency, quarantine, recall, retrain rule, DVC."""

from __future__ import annotations

import pytest
from ingest_fakes import SAMPLE_BAD_ROWS, init_dvc_repo, make_inbox

from serac.config import IngestConfig
from serac.pipeline import dvc, ingest


def config(tmp_path, inbox, **kw) -> IngestConfig:
    return IngestConfig(inbox=str(inbox), staging_dir=str(tmp_path / "staging"),
                        validated_root=str(tmp_path / "ingested"), ledger=str(tmp_path / "ingested/ledger.json"), **kw)


def test_discover_lists_matching_files_sorted_with_their_sha256(tmp_path):
    inbox = make_inbox(tmp_path, extra=True)
    (inbox / "a-first.csv").write_text("task,edit_input,edit_label\n")
    batches = ingest.discover_batches(config(tmp_path, inbox))
    assert [b.name for b in batches] == ["a-first.csv", "batch-0001.jsonl", "batch-0002.jsonl"]  # notes.txt ignored
    assert batches[1].sha256 == ingest.sha256_file(inbox / "batch-0001.jsonl") and len(batches[1].sha256) == 64
    assert batches[1].out_dir(config(tmp_path, inbox)).name == f"batch-0001-{batches[1].sha256[:8]}"
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ingest.discover_batches(config(tmp_path, tmp_path / "missing"))


def test_remote_inbox_is_staged_locally(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    local = make_inbox(tmp_path / "src", extra=True)
    for path in local.iterdir():
        fs.pipe(f"/serac-test-inbox/{path.name}", path.read_bytes())
    try:
        batches = ingest.discover_batches(config(tmp_path, "memory://serac-test-inbox"))
    finally:
        fs.rm("/serac-test-inbox", recursive=True)
    assert [b.name for b in batches] == ["batch-0001.jsonl", "batch-0002.jsonl"]
    assert batches[0].source == "memory:///serac-test-inbox/batch-0001.jsonl"
    assert batches[0].path == tmp_path / "staging" / "batch-0001.jsonl"
    assert batches[0].sha256 == ingest.sha256_file(local / "batch-0001.jsonl")


def test_bad_rows_are_quarantined_the_rest_added_and_the_ledger_makes_it_idempotent(tmp_path, make_editor):
    cfg = config(tmp_path, make_inbox(tmp_path))
    editor = make_editor(tmp_path / "memory")
    (batch,) = ingest.discover_batches(cfg)
    pending, done = ingest.split_pending([batch], ingest.read_ledger(cfg.ledger))
    assert pending == [batch] and done == []

    version, existing = ingest.memory_state(editor.memory.config)
    assert (version, existing) == (0, frozenset())
    report = ingest.validate_batch(batch, cfg, existing)
    assert {q.row for q in report.quarantined} == SAMPLE_BAD_ROWS
    assert report.rows_in == len(report.passed) + len(report.quarantined) == 41 and report.batch_ok
    assert sorted(p.name for p in batch.out_dir(cfg).iterdir()) == [
        "gx_result.json", "passed.parquet", "quarantine.parquet", "report.html", "summary.json"]

    result = ingest.add_to_memory(editor, report.passed)
    assert sorted(result.added) == sorted(r.edit_id for r in report.passed) and result.version == 1
    ingest.record_batch(cfg.ledger, batch.sha256, ingest.ledger_entry(batch, report, result))
    ingest.verify_batch(editor.memory.config, cfg.ledger, batch, report.passed, result)
    entry = ingest.read_ledger(cfg.ledger)["batches"][batch.sha256]
    assert entry["added"] == 37 and entry["quarantined"] == 4 and entry["memory_version"] == 1

    # the same inbox again: the batch is in the ledger, nothing to do; adding again would not write either
    pending, done = ingest.split_pending(ingest.discover_batches(cfg), ingest.read_ledger(cfg.ledger))
    assert pending == [] and done == [batch]
    again = ingest.add_to_memory(editor, report.passed)
    assert again.added == [] and again.version == 1 and editor.memory.versions() == [1]

    # a rollback puts the ledger back as it was
    ingest.restore_entry(cfg.ledger, batch.sha256, None)
    assert ingest.read_ledger(cfg.ledger)["batches"] == {}

    recall = ingest.scope_recall(editor, report.passed)
    assert recall is not None and 0.8 <= recall <= 1.0
    assert ingest.scope_recall(editor, []) is None


def test_verify_names_edits_missing_from_the_memory(tmp_path, make_editor):
    cfg = config(tmp_path, make_inbox(tmp_path, sample=False, extra=True))
    editor = make_editor(tmp_path / "memory")
    (batch,) = ingest.discover_batches(cfg)
    report = ingest.validate_batch(batch, cfg)
    result = ingest.add_to_memory(editor, report.passed[:1])
    ingest.record_batch(cfg.ledger, batch.sha256, ingest.ledger_entry(batch, report, result))
    with pytest.raises(ingest.IngestVerificationError, match="1 edit"):
        ingest.verify_batch(editor.memory.config, cfg.ledger, batch, report.passed, result)


def test_ledger_counts_new_edits_since_the_last_training(tmp_path):
    path = tmp_path / "ledger.json"
    ingest.record_batch(path, "a" * 64, {"file": "a", "ingested_at": ingest._now(), "added": 30, "skipped": 0,
                                         "quarantined": 0, "memory_version": 1})
    assert ingest.new_edits_since_training(ingest.read_ledger(path)) == 30
    ingest.mark_trained(path, 1)
    assert ingest.new_edits_since_training(ingest.read_ledger(path)) == 0
    ingest.record_batch(path, "b" * 64, {"file": "b", "ingested_at": ingest._now(), "added": 5, "skipped": 1,
                                         "quarantined": 2, "memory_version": 2})
    assert ingest.new_edits_since_training(ingest.read_ledger(path)) == 5
    path.write_text('{"batches": []}')
    with pytest.raises(ingest.LedgerError, match="not a serac ingest ledger"):
        ingest.read_ledger(path)


@pytest.mark.parametrize(
    ("new_edits", "recall", "expected", "reason"),
    [
        (0, None, False, "no new edits"),
        (99, 0.95, False, "0.950 >= 0.900"),
        (100, 0.95, True, "100 edits added"),
        (3, 0.5, True, "scope recall 0.500"),
        (500, 0.2, True, "scope recall 0.200"),  # the urgent reason wins
    ],
)
def test_should_retrain(new_edits, recall, expected, reason):
    cfg = IngestConfig(retrain_min_new_edits=100, retrain_min_recall=0.9)
    decision, why = ingest.should_retrain(cfg, new_edits, recall)
    assert decision is expected and reason in why


def test_report_markdown_has_counts_reasons_version_recall_and_decision():
    row = ingest.BatchRow("in/b1.jsonl", "f" * 64, ingest.INGESTED, rows_in=10, passed=8, quarantined=2,
                          reasons={"empty_field:edit_label": 2}, added=7, already_in_memory=1, memory_version=3)
    refused = ingest.BatchRow("in/b2|x.jsonl", "e" * 64, ingest.REFUSED, rows_in=4, quarantined=4, message="too bad")
    report = ingest.IngestReport("data/memory", 2, 3, [row, refused], ["old.jsonl"], memory_md5="abc.dir",
                                 recall=0.875, new_edits_since_training=7, retrain=False, retrain_reason="few edits")
    assert report.totals == {"rows_in": 14, "passed": 8, "quarantined": 6, "added": 7, "already_in_memory": 1,
                             "ingested": 1, "refused": 1, "failed": 0}
    md = report.to_markdown()
    for text in ("| `b1.jsonl` `ffffffff` | ingested | 10 | 8 | 2 | 7 | 1 | v3 |", "`empty_field:edit_label` | 2",
                 "v2 -> v3", "abc.dir", "0.875", "retrain: **no**", "1 already in the ledger", "b2\\|x.jsonl"):
        assert text in md


def test_track_memory_dvc_adds_the_memory_and_returns_its_md5(tmp_path):
    repo = tmp_path / "repo"
    memory = repo / "data" / "memory"
    (memory / "versions" / "v000001").mkdir(parents=True)
    (memory / "versions" / "v000001" / "edits.parquet").write_bytes(b"rows")
    (memory / "CURRENT").write_text("v000001\n")
    if not init_dvc_repo(repo):
        pytest.skip("git or dvc unavailable")
    assert ingest.track_memory(tmp_path / "elsewhere") is None  # not a directory yet: an empty memory

    md5 = ingest.track_memory(memory)
    assert md5 and md5.endswith(".dir") and (repo / "data" / "memory.dvc").is_file()
    assert ingest.tracked_memory_md5(memory) == md5
    assert ingest.track_memory(memory) == md5  # unchanged memory, same version
    (memory / "CURRENT").write_text("v000002\n")
    assert ingest.track_memory(memory) not in (None, md5)

    outside = tmp_path / "plain" / "memory"
    outside.mkdir(parents=True)
    assert ingest.track_memory(outside) is None
    with pytest.raises(dvc.DvcError, match="exit status"):
        dvc.run_dvc(["add", "does-not-exist"], cwd=repo)
