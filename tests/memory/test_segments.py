"""Segmented memory at scale: cheap appends, delta merges, sealing into ANN segments, float16."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from test_store import FP, make_records, unit_rows

from serac.config import MemoryConfig
from serac.memory import EditMemory, audit, layout
from serac.memory.policy import pair_to_merge, plan_append, trailing_merge_count


def exact_top1(emb: np.ndarray, live: np.ndarray, queries: np.ndarray) -> np.ndarray:
    sims = queries @ emb.T
    sims[:, ~live] = -np.inf
    return sims.argmax(axis=1)


def segment_names(root: Path, version: int) -> list[str]:
    manifest = json.loads((layout.version_dir(root, version) / "manifest.json").read_text())
    return [s["name"] for s in manifest["segments"]]


def test_policy_functions():
    assert trailing_merge_count([5]) == 1
    assert trailing_merge_count([1, 1]) == 2
    assert trailing_merge_count([8, 4, 1]) == 1
    assert trailing_merge_count([3, 1, 1]) == 3  # 1+1=2, then 3 <= 4
    assert pair_to_merge([100, 10, 10], 3) is None
    assert pair_to_merge([100, 10, 10, 50], 3) == 1
    assert plan_append("exact", [], [4, 2], 1, 10).seal is False
    assert plan_append("hnsw", [], [4], 1, 10).seal is True  # first ANN segment: seal everything
    assert plan_append("hnsw", [100], [4, 2], 1, 10).seal is False
    assert plan_append("hnsw", [100], [6, 3], 1, 10) == plan_append("hnsw", [100], [6, 3], 1, 10)
    assert plan_append("hnsw", [100], [6, 3], 1, 10).seal is True


def test_single_adds_write_small_segments_and_share_the_rest(tmp_path):
    root = tmp_path / "memory"
    memory = EditMemory.open(root, MemoryConfig(index="exact"))
    records, emb = make_records(1000), unit_rows(1000, seed=3)
    memory.add(records[:900], emb[:900], FP)
    big = segment_names(root, 1)
    for i in range(900, 1000):
        memory.add([records[i]], emb[i : i + 1], FP)
    names = segment_names(root, memory.version)
    assert names[0] == big[0]  # the 900-row segment is never rewritten
    assert len(names) <= 1 + 8  # O(log n) delta segments
    assert memory.ids() == [r.edit_id for r in records]
    queries = unit_rows(50, seed=4)
    expected = exact_top1(emb, np.ones(1000, bool), queries)
    assert [h[0].position for h in memory.search(queries, 1)] == expected.tolist()
    reopened = EditMemory.open(root, MemoryConfig(index="exact"))
    assert reopened.search(queries, 3) == memory.search(queries, 3)


def test_ann_sealing_and_segment_cap_keep_search_correct(tmp_path):
    root = tmp_path / "memory"
    config = MemoryConfig(index="auto", ann_threshold=200, delta_max_rows=100, max_ann_segments=3)
    memory = EditMemory.open(root, config)
    n = 1200
    records, emb = make_records(n), unit_rows(n, seed=5)
    memory.add(records[:150], emb[:150], FP)
    assert memory.stats()["index_kind"] == "exact" and memory.stats()["ann_segments"] == 0
    memory.add(records[150:300], emb[150:300], FP)  # crosses ann_threshold: everything sealed
    assert memory.stats()["ann_segments"] == 1 and memory.stats()["delta_rows"] == 0
    for start in range(300, n, 37):
        memory.add(records[start : start + 37], emb[start : start + 37], FP)
        assert memory.stats()["delta_rows"] < 100 + 37 and memory.stats()["ann_segments"] <= 3
    memory.remove([records[i].edit_id for i in range(0, n, 7)])
    live = np.ones(n, bool)
    live[::7] = False
    queries = emb[[1, 500, 1199, 640]]
    assert [h[0].position for h in memory.search(queries, 1)] == exact_top1(emb, live, queries).tolist()
    reopened = EditMemory.open(root, config)
    assert reopened.stats()["ann_segments"] == memory.stats()["ann_segments"]
    assert reopened.search(queries, 5) == memory.search(queries, 5)
    assert memory.compact() == memory.version and reopened.refresh()
    assert reopened.stats()["segments"] == 1 and len(reopened) == live.sum()
    assert reopened.search(queries[:1], 1)[0][0].edit_id == records[1].edit_id


def test_removal_is_visible_to_a_view_taken_before_it(tmp_path):
    memory = EditMemory.open(tmp_path / "m", MemoryConfig(index="exact"))
    records, emb = make_records(10), unit_rows(10)
    memory.add(records, emb, FP)
    before = memory.read_view()  # e.g. held by a request thread that is mid-search
    memory.remove([records[4].edit_id])
    assert before.search(emb[4:5], 1)[0][0].edit_id != records[4].edit_id


def test_float16_storage(tmp_path):
    root = tmp_path / "memory"
    config = MemoryConfig(index="hnsw", embedding_dtype="float16")
    memory = EditMemory.open(root, config)
    records, emb = make_records(300), unit_rows(300, seed=8)
    memory.add(records, emb, FP)
    (name,) = segment_names(root, 1)
    stored = np.load(layout.segment_dir(root, name) / "embeddings.npy", mmap_mode="r")
    assert stored.dtype == np.float16 and memory.stats()["embedding_dtype"] == "float16"
    hits = EditMemory.open(root, config).search(emb[[3, 200]], 1)
    assert [h[0].edit_id for h in hits] == [records[3].edit_id, records[200].edit_id]
    assert hits[0][0].score == pytest.approx(1.0, abs=2e-3)


def test_adding_one_edit_to_a_large_hnsw_memory_is_cheap(tmp_path):
    root = tmp_path / "memory"
    config = MemoryConfig(index="hnsw", verify_checksums=False)
    memory = EditMemory.open(root, config)
    n = 20000
    records, emb = make_records(n + 20), unit_rows(n + 20, seed=9)
    memory.add(records[:n], emb[:n], FP)
    first = segment_names(root, 1)[0]
    times = []
    for i in range(n, n + 20):
        start = time.perf_counter()
        memory.add([records[i]], emb[i : i + 1], FP)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.25  # no copy of the 20k rows, no HNSW rebuild
    assert segment_names(root, memory.version)[0] == first
    hits = memory.search(emb[[5, n + 19]], 1)
    assert [h[0].edit_id for h in hits] == [records[5].edit_id, records[n + 19].edit_id]


def test_a_first_format_memory_is_upgraded_on_open(tmp_path):
    import pyarrow.parquet as pq

    from serac.data.schema import records_to_table

    root = tmp_path / "memory"
    old = root / "versions" / "v000003"
    old.mkdir(parents=True)
    records, emb = make_records(6), unit_rows(6, seed=2)
    pq.write_table(records_to_table(records), old / "edits.parquet")
    np.save(old / "embeddings.npy", emb)
    (old / "tombstones.json").write_text(json.dumps([records[1].edit_id]))
    (old / "manifest.json").write_text(json.dumps({"format": "serac-memory/1", "version": 3, "dim": 16,
                                                   "encoder_fingerprint": FP, "index": {"kind": "exact"}}))
    (root / "CURRENT").write_text("v000003\n")
    memory = EditMemory.open(root, MemoryConfig(index="exact"))
    assert memory.version == 4 and memory.ids() == [r.edit_id for i, r in enumerate(records) if i != 1]
    assert memory.encoder_fingerprint == FP and memory.search(emb[4], 1)[0][0].edit_id == records[4].edit_id
    assert memory.add(make_records(1, start=50), unit_rows(1, seed=3), FP).version == 5
    assert len(EditMemory.open(root, MemoryConfig(index="exact"))) == 6
    trail = [(r.action, r.version_before, r.version_after) for r in audit.read_records(root)]
    assert trail == [("upgrade", 3, 4), ("add", 4, 5)] and audit.verify(root) == []
