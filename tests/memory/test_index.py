"""Vector indexes: exact numpy search, faiss flat and HNSW, the kind rule, save/load."""

import numpy as np
import pytest

from serac.memory import index as index_mod
from serac.memory.index import ExactIndex, FaissIndex, VectorIndex, build_index, resolve_index_kind


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(rows: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ rows.T), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("make", [lambda d: ExactIndex(d), lambda d: FaissIndex(d, "flat")], ids=["exact", "flat"])
def test_exact_kinds_match_brute_force(make):
    rows, queries = unit_rows(500, 24), unit_rows(20, 24, seed=1)
    index = make(24)
    index.add(rows[:300])
    index.add(rows[300:])  # positions continue across adds
    scores, positions = index.search(queries, 7)
    assert scores.dtype == np.float32 and positions.dtype == np.int64 and scores.shape == (20, 7)
    np.testing.assert_array_equal(positions, brute_force(rows, queries, 7))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ rows.T, positions, axis=1), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_fewer_rows_than_k_pads_with_minus_one(kind):
    index = build_index(kind, 8)
    scores, positions = index.search(unit_rows(2, 8), 4)
    assert positions.tolist() == [[-1] * 4] * 2 and np.all(np.isneginf(scores))
    index.add(unit_rows(3, 8))
    scores, positions = index.search(unit_rows(2, 8, seed=5), 5)
    assert sorted(positions[0, :3].tolist()) == [0, 1, 2]
    assert positions[:, 3:].tolist() == [[-1, -1]] * 2 and np.all(np.isneginf(scores[:, 3:]))
    assert np.all(np.isfinite(scores[:, :3]))


def test_exact_and_faiss_flat_agree():
    rows, queries = unit_rows(3000, 64, seed=2), unit_rows(50, 64, seed=3)
    exact, flat = ExactIndex(64), FaissIndex(64, "flat")
    exact.add(rows)
    flat.add(rows)
    s1, p1 = exact.search(queries, 10)
    s2, p2 = flat.search(queries, 10)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_exact_search_in_blocks_gives_same_result(monkeypatch):
    rows, queries = unit_rows(200, 16), unit_rows(30, 16, seed=4)
    index = ExactIndex(16, rows)
    expected = index.search(queries, 5)
    monkeypatch.setattr(index_mod, "_BLOCK_ELEMENTS", 450)  # two queries per block
    got = index.search(queries, 5)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)  # float32 matmuls of other shapes: last-ulp drift


def test_hnsw_recall_vs_exact_on_20k_vectors():
    rows, queries = unit_rows(20_000, 32, seed=6), unit_rows(200, 32, seed=7)
    hnsw = FaissIndex(32, "hnsw", hnsw_m=32, hnsw_ef_search=64)
    hnsw.add(rows)
    exact = ExactIndex(32, rows)
    _, approx = hnsw.search(queries, 10)
    _, truth = exact.search(queries, 10)
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx.tolist(), truth.tolist())])
    assert recall >= 0.95, recall


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    rows, queries = unit_rows(400, 12), unit_rows(5, 12, seed=8)
    index = build_index(kind, 12)
    index.add(rows)
    path = tmp_path / "index.bin"
    index.save(path)
    loaded = index_mod.load_index(path, kind)
    assert isinstance(loaded, VectorIndex)
    assert loaded.kind == kind and len(loaded) == 400 and loaded.dim == 12
    for a, b in zip(index.search(queries, 6), loaded.search(queries, 6)):
        np.testing.assert_array_equal(a, b)


def test_kind_rule():
    assert resolve_index_kind("auto", 49_999, 50_000) == "exact"
    assert resolve_index_kind("auto", 50_000, 50_000) == "hnsw"
    assert resolve_index_kind("flat", 10**7, 50_000) == "flat"
    assert build_index("auto", 4, n_hint=10, ann_threshold=100).kind == "exact"
    assert build_index("auto", 4, n_hint=100, ann_threshold=100).kind == "hnsw"
    with pytest.raises(ValueError, match="unknown index kind"):
        resolve_index_kind("ivf", 1, 1)


@pytest.mark.parametrize("kind", ["exact", "flat"])
def test_dimension_mismatch_raises(kind):
    index = build_index(kind, 8)
    with pytest.raises(ValueError, match="dimension"):
        index.add(unit_rows(2, 9))
    index.add(unit_rows(2, 8))
    with pytest.raises(ValueError, match="dimension"):
        index.search(unit_rows(1, 7), 1)
