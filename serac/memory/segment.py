"""Segments: immutable groups of memory rows (Parquet records + memory-mapped embeddings [+ HNSW]).

A segment is written once into ``segments/<name>/`` (via :func:`serac.io.atomic_dir`) and
never changed; versions list the segments they are made of, with the sha256 and size of
each data file (:class:`~serac.memory.layout.SegmentRef`). Sizes are checked whenever a
segment is opened, hashes when the caller asks (once per segment and process, see
:class:`~serac.memory.store.EditMemory`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serac.data.schema import EDIT_SCHEMA
from serac.io import atomic_dir, fsync_path
from serac.memory.index import VectorIndex, load_index
from serac.memory.layout import (
    MemoryCorruptError,
    SegmentRef,
    check_file,
    file_meta,
    segment_dir,
)

EDITS_FILE = "edits.parquet"
EMBEDDINGS_FILE = "embeddings.npy"
INDEX_FILE = "index.faiss"
EMBEDDING_DTYPES = ("float32", "float16")
PERSISTED_INDEX_KINDS = frozenset({"hnsw"})
"""Only an HNSW graph is stored: an exact or flat index is rebuilt from embeddings.npy in seconds."""

_COPY_ROWS = 1 << 16
_SMALL_ROWS = 1 << 14


@dataclass
class Segment:
    """One opened segment. ``index`` is set for sealed segments (kinds ``hnsw`` / ``flat``)."""

    ref: SegmentRef
    path: Path
    table: pa.Table
    embeddings: np.ndarray
    """[rows, dim] in the stored dtype, a read-only memory map (in RAM for 0 rows)."""
    index: VectorIndex | None = None

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def rows(self) -> int:
        return self.ref.rows

    @property
    def index_kind(self) -> str | None:
        return self.ref.index

    def embeddings_f32(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` as an in-RAM float32 array."""
        return np.asarray(self.embeddings[start:stop], dtype=np.float32)


def write_segment(
    root: Path,
    name: str,
    table: pa.Table,
    embeddings: np.ndarray | Callable[[np.ndarray], None],
    *,
    dim: int,
    dtype: str,
    index_kind: str | None,
    index_params: dict[str, Any],
    build_index: Callable[[np.ndarray], VectorIndex] | None = None,
) -> tuple[SegmentRef, VectorIndex | None]:
    """Write segment ``name``; return its manifest entry and the index built for it (if any).

    ``embeddings`` is an array [rows, dim] or a function filling a preallocated array in
    place (for large merges). ``build_index`` receives the written rows (memory map).
    """
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(f"embedding dtype must be one of {EMBEDDING_DTYPES}, got {dtype!r}")
    rows = table.num_rows
    built: VectorIndex | None = None
    target = segment_dir(root, name)
    with atomic_dir(target) as tmp:
        pq.write_table(table, tmp / EDITS_FILE)
        emb_path = tmp / EMBEDDINGS_FILE
        save_embeddings(emb_path, embeddings, rows, dim, dtype)
        files = [EDITS_FILE, EMBEDDINGS_FILE]
        if build_index is not None:
            stored = np.load(emb_path, mmap_mode="r") if rows else np.empty((0, dim), dtype=dtype)
            built = build_index(stored)
            if index_kind in PERSISTED_INDEX_KINDS:
                built.save(tmp / INDEX_FILE)
                files.append(INDEX_FILE)
        for file_name in files:
            fsync_path(tmp / file_name)
        meta = {"dim": dim, "dtype": dtype, "index_params": index_params,
                "files": {file_name: file_meta(tmp / file_name) for file_name in files}}
    return SegmentRef(name, rows, index_kind, meta), built


def save_embeddings(
    path: Path, source: np.ndarray | Callable[[np.ndarray], None], rows: int, dim: int, dtype: str
) -> None:
    """Write a [rows, dim] .npy of ``dtype`` from an array or a filling function (through a memory map)."""
    if rows == 0:
        with open(path, "wb") as fh:
            np.save(fh, np.empty((0, dim), dtype=dtype))
        return
    if rows <= _SMALL_ROWS:  # small: fill in RAM and write once (no memory-map flush)
        small = np.empty((rows, dim), dtype=dtype)
        if callable(source):
            source(small)
        else:
            small[:] = source
        with open(path, "wb") as fh:
            np.save(fh, small)
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(rows, dim))
    if callable(source):
        source(out)
    else:
        for start in range(0, rows, _COPY_ROWS):
            out[start : start + _COPY_ROWS] = source[start : start + _COPY_ROWS]
    out.flush()
    del out


def read_segment(
    root: Path, ref: SegmentRef, *, verify: bool, hnsw_ef_search: int, load_stored_index: bool = True
) -> Segment:
    """Open segment ``ref`` (sizes always checked, sha256 when ``verify``); corruption names the file."""
    path = segment_dir(root, ref.name)
    meta = ref.meta
    try:
        dim, dtype, files = int(meta["dim"]), str(meta["dtype"]), meta["files"]
        if dtype not in EMBEDDING_DTYPES:
            raise ValueError(f"dtype {dtype}")
        required = [EDITS_FILE, EMBEDDINGS_FILE] + ([INDEX_FILE] if ref.index in PERSISTED_INDEX_KINDS else [])
        for name in required:
            if name not in files:
                raise ValueError(f"does not list {name}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MemoryCorruptError(path, f"bad segment entry in the version manifest: {exc}") from exc
    if not path.is_dir():
        raise MemoryCorruptError(path, "segment directory missing")
    for name, file_info in files.items():
        check_file(path / name, file_info, verify)
    rows = ref.rows

    edits_path = path / EDITS_FILE
    try:
        table = pq.read_table(edits_path).cast(EDIT_SCHEMA)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise MemoryCorruptError(edits_path, f"unreadable Parquet: {exc}") from exc
    if table.num_rows != rows:
        raise MemoryCorruptError(edits_path, f"{table.num_rows} rows, the manifest says {rows}")

    emb_path = path / EMBEDDINGS_FILE
    try:
        embeddings = np.load(emb_path, mmap_mode="r") if rows else np.load(emb_path)
    except Exception as exc:
        raise MemoryCorruptError(emb_path, f"unreadable .npy: {exc}") from exc
    if embeddings.dtype != np.dtype(dtype) or embeddings.shape != (rows, dim):
        raise MemoryCorruptError(emb_path, f"{embeddings.dtype} {embeddings.shape}, expected {dtype} {(rows, dim)}")

    segment = Segment(ref, path, table, embeddings)
    if load_stored_index and ref.index in PERSISTED_INDEX_KINDS:
        index_path = path / INDEX_FILE
        try:
            segment.index = load_index(index_path, ref.index, hnsw_ef_search=hnsw_ef_search)
        except Exception as exc:  # faiss raises RuntimeError for a damaged file
            raise MemoryCorruptError(index_path, f"unreadable index: {exc}") from exc
        if len(segment.index) != rows or segment.index.dim != dim:
            raise MemoryCorruptError(index_path, f"{len(segment.index)} x {segment.index.dim}, expected {rows} x {dim}")
    return segment
