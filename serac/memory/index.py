"""Vector indexes over L2-normalised float32 rows: inner product = cosine similarity.

An index maps a row *position* (0, 1, 2, ... in insertion order) to a vector and
answers top-k inner-product queries. It knows nothing about edits or deletions:
tombstoned rows stay in the index and the caller (:class:`serac.memory.store.EditMemory`)
filters them out of the results, fetching more than ``k`` candidates and searching
again with a larger ``k`` when too many of them were tombstoned. ``compact`` on the
store rebuilds the index without those rows.

Which index to use is decided by :func:`resolve_index_kind`, one explicit rule:

* ``exact`` — numpy matmul over all rows; exact, no build cost, fine up to ~50k rows;
* ``flat`` — faiss ``IndexFlatIP``; exact too, faster BLAS kernels, same O(n) per query;
* ``hnsw`` — faiss ``IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``; approximate,
  sub-millisecond queries at 10^6 rows, but slow to build (minutes at 10^6 rows);
* ``auto`` — ``exact`` below ``ann_threshold`` rows, ``hnsw`` from there on.

With ``fp16=True`` the HNSW index stores its vectors as float16 (faiss ``IndexHNSWSQ``,
``QT_fp16``): half the RAM, scores within ~1e-3 of float32.

Every ``search`` returns ``(scores float32 [n, k], positions int64 [n, k])``, best
first; when the index holds fewer than ``k`` rows the tail is padded with position
``-1`` and score ``-inf``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

INDEX_KINDS: tuple[str, ...] = ("auto", "exact", "flat", "hnsw")

_BLOCK_ELEMENTS = 1 << 24
"""Exact search scores queries in blocks of at most this many (query, row) pairs (64 MiB)."""


@runtime_checkable
class VectorIndex(Protocol):
    """What the memory needs from an index. Positions are insertion order."""

    kind: str
    dim: int

    def add(self, vectors: np.ndarray) -> None:
        """Append rows ``[m, dim]``; they get positions ``len(self) .. len(self)+m-1``."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows by inner product: ``(scores float32 [n, k], positions int64 [n, k])``."""

    def save(self, path: str | Path) -> None:
        """Write the index to one file."""

    def __len__(self) -> int: ...


def resolve_index_kind(kind: str, n_rows: int, ann_threshold: int) -> str:
    """The concrete kind for ``kind`` at ``n_rows``: ``auto`` is exact below the threshold, hnsw above."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {INDEX_KINDS}")
    if kind == "auto":
        return "exact" if n_rows < ann_threshold else "hnsw"
    return kind


def build_index(
    kind: str,
    dim: int,
    n_hint: int = 0,
    ann_threshold: int = 50000,
    *,
    hnsw_m: int = 32,
    hnsw_ef_search: int = 64,
    hnsw_ef_construction: int = 40,
) -> VectorIndex:
    """An empty index of ``kind`` (see :func:`resolve_index_kind`; ``n_hint`` = expected rows)."""
    concrete = resolve_index_kind(kind, n_hint, ann_threshold)
    if concrete == "exact":
        return ExactIndex(dim)
    return FaissIndex(
        dim,
        kind=concrete,
        hnsw_m=hnsw_m,
        hnsw_ef_search=hnsw_ef_search,
        hnsw_ef_construction=hnsw_ef_construction,
    )


def load_index(path: str | Path, kind: str, *, hnsw_ef_search: int = 64) -> VectorIndex:
    """Read an index written by ``save`` of the given concrete ``kind``."""
    if kind == "exact":
        return ExactIndex.load(path)
    if kind in ("flat", "hnsw"):
        return FaissIndex.load(path, hnsw_ef_search=hnsw_ef_search)
    raise ValueError(f"unknown index kind {kind!r}")


def as_matrix(vectors: np.ndarray, dim: int | None = None, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``[n, dim]`` array (a 1-D vector is one row)."""
    arr = np.asarray(vectors)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array [n, dim], got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what}: dimension {arr.shape[1]} does not match the index dimension {dim}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _empty_result(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def exact_topk(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of ``rows`` by inner product with each float32 query row (see the module doc)."""
    n_rows = len(rows)
    scores, positions = _empty_result(len(queries), k)
    kk = min(k, n_rows)
    if kk == 0 or len(queries) == 0:
        return scores, positions
    block = max(1, _BLOCK_ELEMENTS // n_rows)
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ rows.T
        if kk < n_rows:
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(n_rows), (len(sims), n_rows))
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        scores[start : start + block, :kk] = np.take_along_axis(top_scores, order, axis=1)
        positions[start : start + block, :kk] = np.take_along_axis(top, order, axis=1)
    return scores, positions


class ExactIndex:
    """Brute-force inner product with numpy; the rows may be a read-only memory map."""

    kind = "exact"

    def __init__(self, dim: int, vectors: np.ndarray | None = None):
        self.dim = int(dim)
        self._chunks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = np.empty((0, self.dim), dtype=np.float32)
        if vectors is not None:
            arr = np.asarray(vectors)
            if arr.ndim != 2 or arr.shape[1] != self.dim:
                raise ValueError(f"vectors: expected shape [n, {self.dim}], got {arr.shape}")
            # Kept as given (a float32 memory map stays one; no copy into RAM).
            self._matrix = arr if arr.dtype == np.float32 else arr.astype(np.float32)

    def add(self, vectors: np.ndarray) -> None:
        self._chunks.append(as_matrix(vectors, self.dim).copy())

    def _rows(self) -> np.ndarray:
        # Appends are buffered and joined once, at the next search.
        if self._chunks:
            parts = ([self._matrix] if self._matrix is not None and len(self._matrix) else []) + self._chunks
            self._matrix = np.concatenate(parts, axis=0)
            self._chunks = []
        assert self._matrix is not None
        return self._matrix

    def __len__(self) -> int:
        return (0 if self._matrix is None else len(self._matrix)) + sum(len(c) for c in self._chunks)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_topk(as_matrix(queries, self.dim, "queries"), self._rows(), k)

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self._rows()))

    @classmethod
    def load(cls, path: str | Path) -> ExactIndex:
        rows = np.load(path, mmap_mode="r")
        return cls(rows.shape[1], rows)


class FaissIndex:
    """faiss ``IndexFlatIP`` (``kind="flat"``) or ``IndexHNSWFlat`` with inner product (``"hnsw"``)."""

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 64,
        hnsw_ef_construction: int = 40,
        fp16: bool = False,
        _index: object | None = None,
    ):
        import faiss  # imported here: the exact index needs no faiss

        if kind not in ("flat", "hnsw"):
            raise ValueError(f"FaissIndex kind must be 'flat' or 'hnsw', got {kind!r}")
        self.kind = kind
        self.dim = int(dim)
        if _index is not None:
            self._index = _index
        elif kind == "flat":
            self._index = faiss.IndexFlatIP(self.dim)
        elif fp16:
            # Vectors stored as float16 (half the RAM); fp16 "training" only records the type.
            self._index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_fp16, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._index.train(np.zeros((1, self.dim), dtype=np.float32))
            self._index.hnsw.efConstruction = hnsw_ef_construction
        else:
            self._index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = hnsw_ef_construction
        if kind == "hnsw":
            # faiss searches with max(efSearch, k), so a large k still gets enough breadth.
            self._index.hnsw.efSearch = hnsw_ef_search

    def add(self, vectors: np.ndarray) -> None:
        arr = as_matrix(vectors, self.dim)
        if len(arr):
            self._index.add(arr)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = as_matrix(queries, self.dim, "queries")
        if k <= 0 or len(q) == 0 or len(self) == 0:
            return _empty_result(len(q), max(k, 0))
        scores, positions = self._index.search(q, k)
        scores = np.asarray(scores, dtype=np.float32)
        positions = np.asarray(positions, dtype=np.int64)
        scores[positions < 0] = -np.inf  # faiss pads with -FLT_MAX
        return scores, positions

    def save(self, path: str | Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: str | Path, *, hnsw_ef_search: int = 64) -> FaissIndex:
        import faiss

        index = faiss.read_index(str(path))
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        return cls(index.d, kind, hnsw_ef_search=hnsw_ef_search, _index=index)
