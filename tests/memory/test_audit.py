"""serac.memory.audit on its own: records, the hash chain, verification, crash leftovers, concurrent appends."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
from pathlib import Path

import pytest

from serac.memory import audit, layout

CTX = audit.AuditContext("alice", "TICKET-7", "cli")


def append_change(root: Path, before: int, ids: list[str] = (), **extra) -> audit.AuditRecord:
    """One audited change from ``before`` to ``before + 1``, CURRENT moved as the memory would."""
    record = audit.append(root, CTX, action="add", version_before=before, version_after=before + 1,
                          edit_ids=list(ids), **extra)
    layout.write_current(root, before + 1)
    return record


def lines(root: Path) -> list[dict]:
    return [json.loads(raw) for raw in audit.audit_path(root).read_text().splitlines() if raw.strip()]


def rewrite(root: Path, records: list[dict]) -> None:
    audit.audit_path(root).write_text("".join(json.dumps(r) + "\n" for r in records))


def test_context_checks_and_normalises():
    assert audit.AuditContext("bob", "   ").reason is None
    with pytest.raises(ValueError, match="actor"):
        audit.AuditContext(" ")
    with pytest.raises(ValueError, match="limit"):
        audit.AuditContext("bob", "x" * (audit.MAX_REASON_CHARS + 1))
    local = audit.AuditContext.local("why", "cli")
    assert local.actor == audit.os_user() and local.source == "cli"
    assert audit.with_reason(CTX, "other").reason == "other" and audit.with_reason(CTX).reason == "TICKET-7"
    assert audit.with_reason(None).actor == audit.os_user()


def test_records_round_trip_and_chain(tmp_path):
    first = append_change(tmp_path, 0, ["a", "b"], edit_sources=["batch.jsonl#1", "batch.jsonl#2"])
    second = audit.append(tmp_path, audit.AuditContext("svc"), action="remove", version_before=1,
                          version_after=2, edit_ids=["a"])
    layout.write_current(tmp_path, 2)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == audit.GENESIS and second.prev_hash == first.hash
    assert first.source_of("b") == "batch.jsonl#2" and second.source_of("a") == ""
    assert audit.read_records(tmp_path) == [first, second]
    assert [r.seq for r, ok in audit.history(tmp_path, "a")] == [1, 2]
    assert [r.seq for r, ok in audit.history(tmp_path, "b")] == [1]
    assert audit.verify(tmp_path) == []


def test_manifest_hash_ties_the_record_to_its_version(tmp_path):
    manifest = layout.version_dir(tmp_path, 1) / layout.MANIFEST_FILE
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"version": 1}\n')
    record = append_change(tmp_path, 0, ["a"])
    assert record.manifest_sha256 == layout.sha256_file(manifest)
    assert audit.verify(tmp_path) == []
    manifest.write_text('{"version": 1, "forged": true}\n')
    assert any("not the manifest this record names" in p for p in audit.verify(tmp_path))


@pytest.mark.parametrize("tamper", ["edit", "add-key", "delete", "reorder"])
def test_verify_catches_tampering(tmp_path, tamper):
    for v in range(3):
        append_change(tmp_path, v, [f"e{v}"])
    records = lines(tmp_path)
    if tamper == "edit":
        records[1]["actor"] = "mallory"
    elif tamper == "add-key":
        records[1]["approved_by"] = "mallory"
    elif tamper == "delete":
        del records[1]
    else:
        records[1], records[2] = records[2], records[1]
    rewrite(tmp_path, records)
    problems = audit.verify(tmp_path)
    assert problems, tamper
    assert any(":2 " in p for p in problems)  # names the line


def test_verify_catches_a_rehashed_edit_by_the_chain(tmp_path):
    for v in range(3):
        append_change(tmp_path, v, [f"e{v}"])
    records = lines(tmp_path)
    records[0]["reason"] = "rewritten"
    records[0]["hash"] = audit.record_hash(records[0])  # a forger recomputes the record's own hash
    rewrite(tmp_path, records)
    assert any("prev_hash" in p and ":2 " in p for p in audit.verify(tmp_path))


def test_a_memory_without_any_trail_fails_verification(tmp_path):
    assert audit.verify(tmp_path) == []  # empty memory: nothing to account for
    layout.write_current(tmp_path, 2)
    assert any("no committed record" in p for p in audit.verify(tmp_path))


def test_unaudited_versions_are_reported(tmp_path):
    append_change(tmp_path, 0, ["a"])
    layout.write_current(tmp_path, 3)  # two changes by a writer that kept no trail
    assert any("v2..v3 changed without an audit record" in p for p in audit.verify(tmp_path))
    append_change(tmp_path, 3, ["b"])
    assert any("v2..v3 changed without an audit record" in p for p in audit.verify(tmp_path))


def test_record_of_a_writer_killed_before_the_swap_is_not_committed(tmp_path):
    append_change(tmp_path, 0, ["a"])
    audit.append(tmp_path, CTX, action="add", version_before=1, version_after=2, edit_ids=["ghost"])  # no swap
    assert [ok for _, ok in audit.history(tmp_path)] == [True, False]
    assert audit.verify(tmp_path) == []  # an attempt, not a hole: no version lacks its record
    append_change(tmp_path, 1, ["b"])  # the next writer commits v2 with other edits
    assert [ok for _, ok in audit.history(tmp_path)] == [True, False, True]
    assert audit.verify(tmp_path) == []


def test_torn_last_line_is_closed_off_and_reported(tmp_path):
    first = append_change(tmp_path, 0, ["a"])
    with open(audit.audit_path(tmp_path), "ab") as fh:
        fh.write(b'{"format": "serac-audit/1", "seq": 2, "act')  # killed mid-write
    second = append_change(tmp_path, 1, ["b"])
    assert second.seq == 2 and second.prev_hash == first.hash
    assert audit.read_records(tmp_path) == [first, second]
    problems = audit.verify(tmp_path)
    assert len(problems) == 1 and ":2: unreadable record" in problems[0]


def test_last_record_is_found_behind_long_lines(tmp_path):
    ids = [f"{i:032d}" for i in range(5000)]  # one line much longer than the tail chunk
    first = append_change(tmp_path, 0, ids)
    second = append_change(tmp_path, 1, ["x"])
    assert second.prev_hash == first.hash and second.seq == 2
    assert audit._last_record(audit.audit_path(tmp_path)) == (second, False)


def test_escape_text_neutralises_terminal_control():
    text = audit.escape_text("eve\x1b[2J fix\x07 \u202eevil\u200b\r\n\x85 back\\slash ünïcode")
    assert not any(ch in text for ch in "\x1b\x07\u202e\u200b\r\n\x85")
    assert "\\x1b[2J" in text and "\\u202e" in text and "back\\\\slash" in text and "ünïcode" in text


def _append_many(root: str, worker: int, n: int) -> None:
    """A writer process: each change under the memory's flock, as EditMemory does."""
    path = Path(root)
    for i in range(n):
        with open(path / layout.LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            current = layout.read_current(path)
            audit.append(path, audit.AuditContext(f"w{worker}"), action="add", version_before=current,
                         version_after=current + 1, edit_ids=[f"{worker}-{i}"])
            layout.write_current(path, current + 1)


def run_writers(target, root: Path, workers: int, each: int) -> None:
    """``workers`` spawned processes running ``target(root, worker, each)`` at once; each must exit cleanly."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(str(root), w, each)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0


def test_concurrent_writer_processes_keep_one_intact_chain(tmp_path):
    workers, each = 4, 15
    run_writers(_append_many, tmp_path, workers, each)
    records = audit.read_records(tmp_path)
    assert [r.seq for r in records] == list(range(1, workers * each + 1))
    assert sorted(i for r in records for i in r.edit_ids) == sorted(f"{w}-{i}" for w in range(workers)
                                                                     for i in range(each))
    assert [r.version_after for r in records] == list(range(1, workers * each + 1))
    assert audit.verify(tmp_path) == []
