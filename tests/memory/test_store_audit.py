"""EditMemory keeps its audit trail: one record per committed version, none without one, crash and concurrency safe."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_audit import run_writers
from test_store import FP, make_records, unit_rows

from serac.config import MemoryConfig
from serac.memory import EditMemory, audit, layout

CFG = MemoryConfig(index="exact")
CTX = audit.AuditContext("alice", "TICKET-1", "cli")


def trail(root: Path) -> list[tuple]:
    return [(r.action, r.version_before, r.version_after, r.actor) for r in audit.read_records(root)]


def test_every_mutation_appends_one_record(tmp_path):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, CFG)
    records = make_records(4)
    memory.add(records, unit_rows(4), FP, audit=CTX)
    assert memory.add(records[:2], unit_rows(2), FP, audit=CTX).added == []  # nothing new: no version, no record
    memory.remove([records[0].edit_id, "never-added"], audit=audit.AuditContext("bob", "GDPR-9", "api 10.0.0.5"))
    memory.remove(["never-added"])  # nothing removed: no record
    memory.compact()
    memory.reembed(unit_rows(3, seed=5), FP + "-new", audit=CTX)
    assert trail(root) == [("add", 0, 1, "alice"), ("remove", 1, 2, "bob"), ("compact", 2, 3, audit.os_user()),
                           ("reembed", 3, 4, "alice")]
    add, remove, compact, reembed = audit.read_records(root)
    assert add.edit_ids == tuple(r.edit_id for r in records) and add.reason == "TICKET-1" and add.source == "cli"
    assert add.edit_sources == tuple(r.source for r in records)  # file#row of each edit
    assert remove.edit_ids == (records[0].edit_id,) and remove.reason == "GDPR-9" and remove.source == "api 10.0.0.5"
    assert compact.details["segments_dropped"] and compact.details["segments_written"][0]["rows"] == 3
    manifest = layout.version_dir(root, 4) / layout.MANIFEST_FILE
    assert reembed.manifest_sha256 == layout.sha256_file(manifest)
    assert audit.verify(root) == []


def test_sealing_a_segment_shows_in_the_record(tmp_path):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, MemoryConfig(index="auto", ann_threshold=10, hnsw_ef_construction=8, hnsw_m=4))
    memory.add(make_records(6), unit_rows(6), FP)
    memory.add(make_records(6, start=6), unit_rows(6, seed=1), FP)  # crosses ann_threshold: sealed into HNSW
    written = [s for r in audit.read_records(root) for s in r.details["segments_written"]]
    assert [s["index"] for s in written] == [None, "hnsw"]
    assert audit.read_records(root)[1].details["segments_dropped"]  # the merged delta segment


def test_a_failed_audit_append_refuses_the_change(tmp_path, monkeypatch):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, CFG)
    memory.add(make_records(2), unit_rows(2), FP)

    def broken(*args, **kwargs):
        raise audit.AuditError("disk full")

    monkeypatch.setattr(audit, "append", broken)
    with pytest.raises(audit.AuditError):
        memory.add(make_records(1, start=10), unit_rows(1, seed=3), FP)
    monkeypatch.undo()
    assert layout.read_current(root) == 1 and len(EditMemory.open(root, CFG)) == 2
    assert memory.add(make_records(1, start=10), unit_rows(1, seed=3), FP).version == 2
    assert audit.verify(root) == []


def test_writer_dying_between_record_and_swap(tmp_path, monkeypatch):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, CFG)
    memory.add(make_records(2), unit_rows(2), FP)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before CURRENT was swapped")

    monkeypatch.setattr(layout, "write_current", killed)
    with pytest.raises(KeyboardInterrupt):
        memory.remove(make_records(1)[0].edit_id)
    monkeypatch.undo()
    other = EditMemory.open(root, CFG)
    assert len(other) == 2  # the removal never committed
    other.add(make_records(1, start=20), unit_rows(1, seed=4), FP)
    assert [ok for _, ok in audit.history(root)] == [True, False, True]
    assert [r.action for r, _ in audit.history(root)] == ["add", "remove", "add"]
    assert audit.verify(root) == []


def test_snapshot_carries_the_trail_up_to_its_version(tmp_path):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, CFG)
    memory.add(make_records(2), unit_rows(2), FP, audit=CTX)
    old = EditMemory.open(root, CFG)
    memory.add(make_records(1, start=5), unit_rows(1, seed=2), FP, audit=CTX)
    old.snapshot(tmp_path / "snap")  # old still holds v1
    assert trail(tmp_path / "snap") == [("add", 0, 1, "alice")]
    assert audit.verify(tmp_path / "snap") == []


def _writer(root: str, worker: int, n: int) -> None:
    memory = EditMemory.open(root, CFG)
    for i in range(n):
        start = 1000 * (worker + 1) + i
        memory.add(make_records(1, start=start), unit_rows(1, seed=start), FP,
                   audit=audit.AuditContext(f"worker-{worker}", f"row {i}"))


def test_concurrent_writer_processes(tmp_path):
    root = tmp_path / "memory"
    workers, each = 3, 6
    run_writers(_writer, root, workers, each)
    records = audit.read_records(root)
    memory = EditMemory.open(root, CFG)
    assert len(memory) == workers * each == len(records)
    assert sorted(i for r in records for i in r.edit_ids) == sorted(memory.ids())
    assert [(r.version_before, r.version_after) for r in records] == [(v, v + 1) for v in range(workers * each)]
    assert {r.actor for r in records} == {f"worker-{w}" for w in range(workers)}
    assert audit.verify(root) == []
