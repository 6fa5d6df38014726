"""EditMemory: versioned writes, idempotence, tombstones, crash safety, corruption, snapshots."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from serac.config import ConfigError, MemoryConfig, load_config
from serac.data.schema import EditRecord, Example
from serac.memory import (
    EditMemory,
    Hit,
    MemoryConflictError,
    MemoryCorruptError,
    MemoryReadOnlyError,
    layout,
)

FP = "minilm@test"
DIM = 16


def unit_rows(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_records(n: int, start: int = 0) -> list[EditRecord]:
    return [
        EditRecord(
            task="qa",
            edit_input=f"Who is the head of state of country {i}?",
            edit_label=f"Leader {i}",
            in_scope=(Example(f"Country {i} is led by whom?", f"Leader {i}"),),
            out_of_scope=(Example("What is 2+2?", "4"),),
            source=f"test#{i}",
        )
        for i in range(start, start + n)
    ]


def segment_paths(root: Path, version: int) -> list[Path]:
    """The segment directories version ``version`` is made of, in position order."""
    manifest = json.loads((layout.version_dir(root, version) / "manifest.json").read_text())
    return [layout.segment_dir(root, s["name"]) for s in manifest["segments"]]


def near(vector: np.ndarray, noise: float = 0.05, seed: int = 1) -> np.ndarray:
    q = vector + noise * np.random.default_rng(seed).standard_normal(vector.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def filled(root: Path) -> tuple[EditMemory, list[EditRecord], np.ndarray]:
    records, emb = make_records(40), unit_rows(40)
    memory = EditMemory.open(root, MemoryConfig(index="exact"))
    memory.add(records, emb, FP)
    return memory, records, emb


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_add_then_search_returns_nearest_edit(root, kind):
    records, emb = make_records(50), unit_rows(50)
    memory = EditMemory.open(root, MemoryConfig(index=kind))
    result = memory.add(records, emb, FP)
    assert result.version == 1 and len(result.added) == 50 and result.skipped == []
    assert len(memory) == 50 and memory.dim == DIM and memory.encoder_fingerprint == FP
    hits = memory.search(near(emb[[7, 31]]), k=3)
    assert [h[0].edit_id for h in hits] == [records[7].edit_id, records[31].edit_id]
    assert all(isinstance(h, Hit) and len(row) == 3 for row in hits for h in row)
    assert hits[0][0].position == 7 and 0.9 < hits[0][0].score <= 1.0001
    assert memory.get(records[7].edit_id) == records[7]
    assert memory.stats()["index_kind"] == kind


def test_single_vector_query_gives_one_result_list(filled):
    memory, records, emb = filled
    hits = memory.search(emb[3], k=2)
    assert len(hits) == 1 and hits[0][0].edit_id == records[3].edit_id


def test_re_adding_is_idempotent_and_writes_no_version(filled, root):
    memory, records, emb = filled
    before = sorted(os.listdir(root / "versions"))
    result = memory.add(records[:5], emb[:5], FP)
    assert result.added == [] and result.skipped == [r.edit_id for r in records[:5]] and result.version == 1
    assert sorted(os.listdir(root / "versions")) == before and memory.version == 1
    mixed = memory.add(records[:2] + make_records(1, start=100), unit_rows(3, seed=9), FP)
    assert mixed.added == [make_records(1, start=100)[0].edit_id] and mixed.version == 2
    assert len(memory) == 41


def test_duplicates_within_one_batch_are_added_once(root):
    record = make_records(1)[0]
    memory = EditMemory.open(root, MemoryConfig())
    result = memory.add([record, record], unit_rows(2), FP)
    assert result.added == [record.edit_id] and result.skipped == [record.edit_id] and len(memory) == 1


def test_remove_hides_immediately_and_compact_drops_rows(filled, root):
    memory, records, emb = filled
    gone = [records[i].edit_id for i in (3, 4, 5)]
    result = memory.remove(gone + ["no-such-id"])
    assert result.removed == gone and result.unknown == ["no-such-id"] and result.version == 2
    assert len(memory) == 37 and not memory.contains(gone[0]) and gone[0] not in memory.ids()
    with pytest.raises(KeyError):
        memory.get(gone[0])
    assert memory.table().num_rows == 37 and len(memory.records()) == 37
    hits = memory.search(emb[[3, 4, 5]], k=37)
    assert all(len(row) == 37 and not {h.edit_id for h in row} & set(gone) for row in hits)
    assert memory.remove(gone).removed == [] and memory.version == 2  # already removed: no version
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert len(reopened) == 37 and not reopened.contains(gone[1])

    assert sum(pq.read_metadata(p / "edits.parquet").num_rows for p in segment_paths(root, 2)) == 40  # rows kept
    assert json.loads((layout.version_dir(root, 2) / "tombstones.json").read_text()) == [3, 4, 5]
    assert segment_paths(root, 2) == segment_paths(root, 1)  # a removal shares every segment
    assert memory.compact() == 3
    (current,) = segment_paths(root, 3)
    assert pq.read_metadata(current / "edits.parquet").num_rows == 37
    assert np.load(current / "embeddings.npy", mmap_mode="r").shape == (37, DIM)
    assert json.loads((layout.version_dir(root, 3) / "tombstones.json").read_text()) == []
    assert memory.stats()["tombstoned"] == 0 and memory.compact() == 3  # nothing left: no version
    assert memory.search(near(emb[6]), k=1)[0][0] == Hit(records[6].edit_id, 3, pytest.approx(1, abs=0.01))


def test_read_view_keeps_its_positions_while_the_memory_is_compacted(filled):
    memory, records, emb = filled
    view = memory.read_view()
    memory.remove([records[0].edit_id, records[1].edit_id])
    memory.compact()  # the memory's new version renumbers every position
    (hit,) = view.search(near(emb[6]), 1)[0]
    assert (hit.edit_id, hit.position) == (records[6].edit_id, 6)
    assert view.record_at(hit.position) == records[6] and view.version == 1
    assert view.search(emb[0], 1)[0][0].edit_id != records[0].edit_id  # a removal reaches every view
    current = memory.read_view()
    (moved,) = current.search(near(emb[6]), 1)[0]
    assert moved.position == 4 and current.record_at(moved.position) == records[6]
    assert current.record_at(6) == records[8] and current.version == memory.version == 3


def test_read_view_search_checks_its_queries(filled):
    memory, _, emb = filled
    view = memory.read_view()
    with pytest.raises(ValueError, match="k must be >= 0"):
        view.search(emb[:1], -1)
    with pytest.raises(ValueError, match="dimension 8 != memory dimension 16"):
        view.search(emb[:1, :8], 1)
    with pytest.raises(ValueError, match="expected \\[n, dim\\]"):
        view.search(emb[None], 1)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_search_refills_when_tombstones_crowd_the_top(root, kind):
    base = unit_rows(1, seed=3)[0]
    cluster = near(np.repeat(base[None, :], 120, axis=0), noise=0.01, seed=4)
    records = make_records(320)
    emb = np.concatenate([cluster, unit_rows(200, seed=5)])
    memory = EditMemory.open(root, MemoryConfig(index=kind))
    memory.add(records, emb, FP)
    memory.remove([r.edit_id for r in records[:115]])  # all but 5 of the nearest
    hits = memory.search(base, k=8)[0]
    assert len(hits) == 8
    assert {h.edit_id for h in hits[:5]} == {r.edit_id for r in records[115:120]}
    assert all(memory.contains(h.edit_id) for h in hits)


def test_removed_id_added_again_gets_a_new_row(filled, root):
    memory, records, emb = filled
    memory.remove([records[2].edit_id])
    updated = EditRecord(records[2].task, records[2].edit_input, records[2].edit_label, source="again#1")
    result = memory.add([updated], emb[2:3], FP)
    assert result.added == [records[2].edit_id] and result.version == 3
    assert memory.get(records[2].edit_id).source == "again#1" and memory.stats()["rows"] == 41
    assert memory.search(emb[2], k=1)[0][0].position == 40 and memory.ids().count(records[2].edit_id) == 1
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert reopened.get(records[2].edit_id).source == "again#1" and len(reopened) == 40


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_reload_gives_identical_records_and_search(root, kind):
    config = MemoryConfig(index=kind)
    records, emb = make_records(60), unit_rows(60)
    memory = EditMemory.open(root, config)
    memory.add(records[:30], emb[:30], FP)
    memory.add(records[30:], emb[30:], FP)
    memory.remove([records[0].edit_id])
    queries = unit_rows(10, seed=11)
    reopened = EditMemory.open(root, config)
    assert reopened.version == memory.version == 3
    assert reopened.records() == memory.records() == records[1:]
    assert reopened.table().equals(memory.table())
    assert reopened.search(queries, 5) == memory.search(queries, 5)
    assert reopened.stats() == memory.stats()
    stored = [np.load(p / "embeddings.npy", mmap_mode="r") for p in segment_paths(root, 3)]
    assert all(isinstance(part, np.memmap) for part in stored) and np.array_equal(np.concatenate(stored), emb)


def test_write_failing_midway_leaves_previous_version(filled, root, monkeypatch):
    memory, records, emb = filled

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(layout, "write_json", boom)  # the manifest, written last in the directory
    with pytest.raises(OSError, match="disk full"):
        memory.add(make_records(5, start=200), unit_rows(5, seed=2), FP)
    monkeypatch.undo()
    assert layout.list_versions(root) == [1] and not [p for p in (root / "versions").iterdir() if p.name != "v000001"]
    assert memory.version == 1 and len(memory) == 40
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert reopened.version == 1 and reopened.records() == records
    assert memory.add(make_records(5, start=200), unit_rows(5, seed=2), FP).version == 2


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_crash_before_current_swap_keeps_previous_version(root, monkeypatch, kind):
    config = MemoryConfig(index=kind)
    records, emb = make_records(30), unit_rows(30)
    memory = EditMemory.open(root, config)
    memory.add(records[:20], emb[:20], FP)

    def crash(root_: Path, version: int) -> None:
        raise KeyboardInterrupt  # e.g. killed after the new directory was renamed into place

    monkeypatch.setattr(layout, "write_current", crash)
    with pytest.raises(KeyboardInterrupt):
        memory.add(records[20:], emb[20:], FP)
    monkeypatch.undo()
    assert layout.version_dir(root, 2).is_dir()  # complete but never committed
    assert memory.version == 1 and len(memory) == 20 and len(memory.search(emb[0], 30)[0]) == 20
    reopened = EditMemory.open(root, config)
    assert reopened.version == 1 and reopened.records() == records[:20]
    assert reopened.versions() == [1]
    assert reopened.add(records[20:], emb[20:], FP).version == 2
    assert EditMemory.open(root, config).records() == records


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from serac.config import MemoryConfig
    from serac.data.schema import EditRecord
    from serac.memory import EditMemory, segment

    n, dim = int(sys.argv[2]), int(sys.argv[3])
    original = segment.save_embeddings

    def save_then_stall(*args):
        original(*args)  # the large file lands in the temporary directory ...
        print("written", flush=True)
        time.sleep(60)  # ... and the parent kills us before the manifest and the renames

    segment.save_embeddings = save_then_stall
    memory = EditMemory.open(sys.argv[1], MemoryConfig(index="exact"))
    records = [EditRecord("fact", f"prompt {i}", f"label {i}") for i in range(n)]
    emb = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    memory.add(records, emb, "minilm@test")
    """
)


def test_writer_killed_with_sigkill_during_large_add(filled, root, tmp_path):
    memory, records, emb = filled
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), "50000", str(DIM)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "written", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in (root / "segments").iterdir() if p.name.startswith(".")]
    assert leftovers  # the half-written temporary segment directory is still there ...
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert reopened.version == 1 and reopened.records() == records  # ... and ignored
    assert reopened.search(emb[:3], 1) == memory.search(emb[:3], 1)
    reopened.add(make_records(2, start=500), unit_rows(2, seed=3), FP)
    for sub in ("versions", "segments"):  # cleaned by the next writer
        assert not [p for p in (root / sub).iterdir() if p.name.startswith(".")]


def test_corrupt_embeddings_named(filled, root):
    path = segment_paths(root, 1)[0] / "embeddings.npy"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # same size, different bytes: only the checksum notices
    path.write_bytes(bytes(data))
    with pytest.raises(MemoryCorruptError, match="embeddings.npy") as info:
        EditMemory.open(root, MemoryConfig(index="exact"))
    assert info.value.path == str(path)
    assert len(EditMemory.open(root, MemoryConfig(index="exact", verify_checksums=False))) == 40


def test_missing_edits_parquet_named(filled, root):
    (segment_paths(root, 1)[0] / "edits.parquet").unlink()
    with pytest.raises(MemoryCorruptError, match=r"edits\.parquet: missing"):
        EditMemory.open(root, MemoryConfig(verify_checksums=False))


def test_truncated_manifest_named(filled, root):
    manifest = layout.version_dir(root, 1) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    with pytest.raises(MemoryCorruptError, match=r"manifest\.json"):
        EditMemory.open(root, MemoryConfig())


def test_bad_current_and_damaged_index_named(root):
    memory = EditMemory.open(root, MemoryConfig(index="hnsw"))
    memory.add(make_records(10), unit_rows(10), FP)
    index_file = segment_paths(root, 1)[0] / "index.faiss"
    index_file.write_bytes(b"\0" * index_file.stat().st_size)
    with pytest.raises(MemoryCorruptError, match=r"index\.faiss"):
        EditMemory.open(root, MemoryConfig(index="hnsw"))
    with pytest.raises(MemoryCorruptError, match=r"index\.faiss"):
        EditMemory.open(root, MemoryConfig(index="hnsw", verify_checksums=False))
    (root / "CURRENT").write_text("garbage\n")
    with pytest.raises(MemoryCorruptError, match="CURRENT"):
        EditMemory.open(root, MemoryConfig())


def test_empty_memory_search_returns_empty_lists(root):
    memory = EditMemory.open(root, MemoryConfig())
    assert memory.search(unit_rows(1)[0], 5) == [[]]
    assert memory.search(unit_rows(3), 5) == [[], [], []]
    assert len(memory) == 0 and memory.version == 0 and memory.ids() == [] and memory.versions() == []
    assert memory.table().num_rows == 0 and not root.exists()  # reading creates nothing
    assert memory.add([], np.empty((0, DIM), np.float32), FP).version == 0 and not root.exists()


def test_fingerprint_dimension_and_norm_checks(filled):
    memory, _, _ = filled
    new = make_records(1, start=300)
    with pytest.raises(ValueError, match="fingerprint"):
        memory.add(new, unit_rows(1), "other-encoder")
    with pytest.raises(ValueError, match="dimension"):
        memory.add(new, unit_rows(1, dim=DIM + 1), FP)
    with pytest.raises(ValueError, match="L2-normalised"):
        memory.add(new, 2 * unit_rows(1), FP)
    with pytest.raises(ValueError, match="shape"):
        memory.add(new, unit_rows(2), FP)
    with pytest.raises(ValueError, match="dimension"):
        memory.search(unit_rows(1, dim=DIM + 1), 3)
    assert memory.version == 1 and len(memory) == 40


def test_reembed_replaces_embeddings_and_fingerprint(filled, root):
    memory, records, _ = filled
    memory.remove([records[0].edit_id])
    new_emb = unit_rows(39, dim=8, seed=21)
    version = memory.reembed(new_emb, "minilm@v2")
    assert version == 3 and memory.dim == 8 and memory.encoder_fingerprint == "minilm@v2"
    assert memory.stats()["rows"] == 39 and memory.records() == records[1:]
    assert memory.search(new_emb[4], 1)[0][0].edit_id == records[5].edit_id
    with pytest.raises(ValueError, match="fingerprint"):
        memory.add(make_records(1, start=400), unit_rows(1, dim=8), FP)
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert reopened.encoder_fingerprint == "minilm@v2" and reopened.dim == 8
    with pytest.raises(ValueError, match="shape"):
        reopened.reembed(unit_rows(3, dim=8), "minilm@v3")


def test_reembed_refuses_when_memory_moved(filled, root):
    memory, _, _ = filled
    other = EditMemory.open(root, MemoryConfig(index="exact"))
    other.add(make_records(1, start=900), unit_rows(1, seed=4), FP)
    with pytest.raises(MemoryConflictError):
        memory.reembed(unit_rows(40), FP)


def test_two_writers_do_not_lose_edits(filled, root):
    first, records, _ = filled
    second = EditMemory.open(root, MemoryConfig(index="exact"))
    first.add(make_records(1, start=600), unit_rows(1, seed=6), FP)
    result = second.add(make_records(1, start=700), unit_rows(1, seed=7), FP)  # catches up first
    assert result.version == 3 and len(second) == 42
    assert len(EditMemory.open(root, MemoryConfig())) == 42


def test_old_versions_are_garbage_collected(root):
    config = MemoryConfig(index="exact", keep_versions=2)
    memory = EditMemory.open(root, config)
    for i in range(5):
        memory.add(make_records(3, start=10 * i), unit_rows(3, seed=i), FP)
    assert memory.versions() == [4, 5] and layout.list_versions(root) == [4, 5]
    old = EditMemory.open(root, config, version=4)
    assert old.read_only and old.version == 4 and len(old) == 12
    with pytest.raises(MemoryReadOnlyError):
        old.add(make_records(1, start=999), unit_rows(1), FP)
    with pytest.raises(FileNotFoundError):
        EditMemory.open(root, config, version=1)


def test_snapshot_round_trip(filled, tmp_path):
    memory, records, emb = filled
    memory.remove([records[1].edit_id])
    dest = memory.snapshot(tmp_path / "snap")
    copy = EditMemory.open(dest, MemoryConfig(index="exact"))
    assert copy.version == memory.version and copy.records() == memory.records()
    assert copy.search(emb[:5], 3) == memory.search(emb[:5], 3)
    copy.add(make_records(1, start=800), unit_rows(1, seed=8), FP)  # the snapshot is independent
    assert len(copy) == 40 and len(memory) == 39
    with pytest.raises(FileExistsError):
        memory.snapshot(dest)


def test_manifest_records_checksums_and_counts(filled, root):
    memory, _, _ = filled
    memory.remove([memory.ids()[0]])
    manifest = json.loads((layout.version_dir(root, 2) / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["parent_version"] == 1
    assert manifest["counts"] == {"rows": 40, "live": 39, "tombstoned": 1}
    assert manifest["dim"] == DIM and manifest["encoder_fingerprint"] == FP and manifest["serac_version"]
    assert set(manifest["files"]) == {"tombstones.json"} and len(manifest["segments"]) == 1
    for name, meta in manifest["files"].items():
        assert layout.sha256_file(layout.version_dir(root, 2) / name) == meta["sha256"]
    (segment,) = segment_paths(root, 2)
    (entry,) = manifest["segments"]
    assert set(entry["files"]) == {"edits.parquet", "embeddings.npy"} and entry["rows"] == 40
    assert entry["dim"] == DIM and entry["dtype"] == "float32" and entry["index"] is None
    for name, meta in entry["files"].items():
        assert layout.sha256_file(segment / name) == meta["sha256"]
    assert (root / "CURRENT").read_text().strip() == "v000002"


def test_auto_index_switches_to_hnsw_at_threshold(root):
    config = MemoryConfig(index="auto", ann_threshold=30)
    memory = EditMemory.open(root, config)
    records, emb = make_records(40), unit_rows(40)
    memory.add(records[:20], emb[:20], FP)
    assert memory.stats()["index_kind"] == "exact"
    memory.add(records[20:], emb[20:], FP)
    assert memory.stats()["index_kind"] == "hnsw" and memory.stats()["ann_segments"] == 1
    assert [(p / "index.faiss").is_file() for p in segment_paths(root, 2)] == [True]  # all 40 rows sealed
    assert EditMemory.open(root, config).search(emb[25], 1)[0][0].edit_id == records[25].edit_id
    memory.remove([r.edit_id for r in records[:15]])
    memory.compact()
    assert memory.stats()["index_kind"] == "exact" and len(memory) == 25


def test_memory_config_checks_and_params_section(tmp_path):
    with pytest.raises(ConfigError, match="keep_versions"):
        MemoryConfig(keep_versions=0)
    with pytest.raises(ConfigError, match="memory.index"):
        MemoryConfig(index="ivf")
    params = tmp_path / "params.yaml"
    params.write_text("memory:\n  index: hnsw\n  keep_versions: 3\n")
    assert load_config(params).memory == MemoryConfig(index="hnsw", keep_versions=3)


def test_compacted_to_empty_then_refilled_with_another_encoder(root):
    config = MemoryConfig(index="flat")
    records = make_records(5)
    memory = EditMemory.open(root, config)
    memory.add(records, unit_rows(5), FP)
    memory.remove(memory.ids())
    assert memory.compact() == 3 and len(memory) == 0 and memory.stats()["rows"] == 0
    reopened = EditMemory.open(root, config)
    assert reopened.version == 3 and reopened.search(unit_rows(2), 3) == [[], []]
    emb = unit_rows(2, dim=8)
    assert reopened.add(records[:2], emb, "other-encoder").version == 4  # no rows left: a fresh start
    assert reopened.dim == 8 and reopened.search(emb[1], 1)[0][0].edit_id == records[1].edit_id
